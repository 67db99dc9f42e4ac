//! Carts. Guest carts: `POST /v1/carts`, `GET /v1/carts/{id}`, `PUT /v1/carts/{id}/items/{sku}`
//! (the id is the cart's bearer secret). The signed-in shopper's persistent cart: `GET /v1/cart`,
//! `PUT /v1/cart/items/{sku}`, and `POST /v1/cart/merge` to bring a guest cart into it at login.
//! Every answer is priced from the catalog now, never from the client, with the promotions in force,
//! the codes entered, the shipping chosen and the tax of its destination (the pricing engine's
//! breakdown). Codes: `POST …/codes` `{code}` (a refused one is a 422 saying why), `DELETE
//! …/codes/{code}`; shipping: `GET …/shipping-methods?country=…` lists what ships the cart there,
//! `PUT …/shipping` chooses.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use platform::auth::AuthUser;
use platform::contracts::catalog::SkuInfo;
use platform::http::{ApiError, Json, Path, Query, docs};
use serde::{Deserialize, Serialize};

use crate::app::pricing::ShippingProblem;
use crate::domain::pricing::{Destination, Shopper};
use crate::domain::promotion::{is_code, normalize_code};
use crate::domain::shipping::Offer;
use crate::domain::{
    Cart, CartResponse, MAX_CODES, MAX_LINES, MAX_QUANTITY, ShippingChoice, is_cart_id, new_cart_id, price,
};
use crate::{AppState, CURRENCY};

/// `PUT …/items/{sku}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityRequest {
    /// Units, 0 (removes the line) to 999.
    pub quantity: i64,
}

/// `POST /v1/cart/merge`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The guest cart to bring in (it goes away).
    pub cart_id: String,
}

fn catalog_unavailable(error: platform::client::ClientError) -> ApiError {
    tracing::warn!(%error, "the catalog did not answer");
    ApiError::unavailable("the catalog is not answering; try again shortly")
}

/// `POST …/codes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The discount code (case does not matter).
    pub code: String,
}

/// `GET …/shipping-methods`: where to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DestinationParams {
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (state, province).
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
}

/// The shipping methods a cart can use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShippingOffers {
    /// Cheapest first, each priced for this cart.
    pub items: Vec<Offer>,
}

/// Who is buying, as promotions see them.
fn shopper_of(cart: &Cart) -> Shopper {
    Shopper { id: cart.owner_id.clone(), ..Shopper::default() }
}

/// The catalog's SKUs of `cart`.
async fn catalog_of(state: &AppState, cart: &Cart) -> Result<HashMap<String, SkuInfo>, ApiError> {
    let skus: Vec<String> = cart.lines.iter().map(|(sku, _)| sku.clone()).collect();
    if skus.is_empty() {
        return Ok(HashMap::new());
    }
    state.catalog.skus(&skus).await.map_err(catalog_unavailable)
}

/// `cart` priced with `catalog` (its SKUs) by the pricing engine, with why its shipping choice
/// does not hold, if it does not.
async fn quoted(
    state: &AppState,
    cart: &Cart,
    catalog: &HashMap<String, SkuInfo>,
) -> Result<(CartResponse, Option<ShippingProblem>), ApiError> {
    let mut response = price(cart, catalog);
    let quote = state.pricer.quote(cart, &response.items, catalog, &shopper_of(cart), None).await?;
    response.shipping_problem =
        quote.shipping_problem.as_ref().map(|p| p.message(cart.shipping.as_ref().map_or("", |s| s.country.as_str())));
    response.pricing = quote.breakdown;
    Ok((response, quote.shipping_problem))
}

/// `cart` priced with `catalog` (its SKUs) by the pricing engine.
async fn priced(state: &AppState, cart: &Cart, catalog: &HashMap<String, SkuInfo>) -> Result<CartResponse, ApiError> {
    Ok(quoted(state, cart, catalog).await?.0)
}

/// `cart`, priced from the catalog now.
async fn respond(state: &AppState, cart: Cart) -> Result<Json<CartResponse>, ApiError> {
    let catalog = catalog_of(state, &cart).await?;
    Ok(Json(priced(state, &cart, &catalog).await?))
}

/// Adds `code` to `cart`, refusing (422, saying why) a code no promotion has or one that would not
/// apply to the cart as it is.
async fn add_code(state: &AppState, cart: Cart, code: &str) -> Result<Json<CartResponse>, ApiError> {
    let code = normalize_code(code);
    if !is_code(&code) {
        return Err(ApiError::invalid_field("code", "must be 1-40 letters, digits, '-' or '_'"));
    }
    if cart.codes.contains(&code) {
        return respond(state, cart).await;
    }
    if cart.codes.len() >= MAX_CODES {
        return Err(ApiError::invalid_field("code", format!("a cart takes at most {MAX_CODES} codes")));
    }
    let settings = state.pricer.settings().await?;
    if !settings.promotions.iter().any(|p| p.code.as_deref() == Some(code.as_str())) {
        return Err(ApiError::unprocessable("code-unknown", format!("{code} is not a code of ours")));
    }
    let mut tried = cart.clone();
    tried.codes.push(code.clone());
    let catalog = catalog_of(state, &tried).await?;
    let response = priced(state, &tried, &catalog).await?;
    if let Some(refused) =
        response.pricing.promotions.iter().find(|p| p.code.as_deref() == Some(code.as_str()) && !p.applied)
    {
        let reason = refused.reason.as_deref().unwrap_or("refused");
        let detail = refused.detail.clone().unwrap_or_default();
        return Err(ApiError::unprocessable(code_problem(reason), format!("{code}: {detail}")));
    }
    let saved = state.carts.set_details(&cart.id, &tried.codes, cart.shipping.as_ref()).await?;
    saved.ok_or_else(|| ApiError::not_found("no such cart"))?;
    // Priced already: the cart saved is the one priced.
    Ok(Json(response))
}

/// The problem type of a refused code, by the engine's reason.
pub(crate) fn code_problem(reason: &str) -> &'static str {
    match reason {
        "inactive" => "code-inactive",
        "not_yet_active" => "code-not-yet-active",
        "expired" => "code-expired",
        "other_currency" => "code-other-currency",
        "minimum_not_met" => "code-minimum-not-met",
        "minimum_quantity_not_met" => "code-minimum-quantity-not-met",
        "first_order_only" => "code-first-order-only",
        "not_eligible" => "code-not-eligible",
        "used_up" => "code-used-up",
        "used_up_by_customer" => "code-used-up-by-customer",
        "not_combinable" => "code-not-combinable",
        "no_matching_items" => "code-no-matching-items",
        "no_shipping" => "code-no-shipping",
        _ => "code-refused",
    }
}

/// Takes `code` off `cart`.
async fn remove_code(state: &AppState, cart: Cart, code: &str) -> Result<Json<CartResponse>, ApiError> {
    let code = normalize_code(code);
    let codes: Vec<String> = cart.codes.iter().filter(|c| **c != code).cloned().collect();
    if codes.len() == cart.codes.len() {
        return Err(ApiError::not_found("the cart has no such code"));
    }
    let saved = state.carts.set_details(&cart.id, &codes, cart.shipping.as_ref()).await?;
    respond(state, saved.ok_or_else(|| ApiError::not_found("no such cart"))?).await
}

/// The shipping methods for `cart` to `params`' destination.
async fn offers(state: &AppState, cart: &Cart, params: DestinationParams) -> Result<Json<ShippingOffers>, ApiError> {
    let choice = ShippingChoice {
        country: params.country,
        region: params.region,
        postal_code: params.postal_code,
        method_id: None,
    };
    let choice = checked_destination(choice)?;
    let catalog = catalog_of(state, cart).await?;
    let items = price(cart, &catalog).items;
    let destination =
        Destination { country: choice.country.clone(), region: choice.region, postal_code: choice.postal_code };
    match state.pricer.offers(cart, &items, &catalog, &destination).await? {
        Some(items) => Ok(Json(ShippingOffers { items })),
        None => Err(ApiError::invalid_field("country", format!("we do not ship to {}", choice.country))),
    }
}

/// `choice` normalized, or the field at fault.
fn checked_destination(mut choice: ShippingChoice) -> Result<ShippingChoice, ApiError> {
    choice.country = choice.country.trim().to_ascii_uppercase();
    if choice.country.len() != 2 || !choice.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid_field("country", "must be an ISO 3166-1 alpha-2 code"));
    }
    let tidy = |value: Option<String>| value.map(|v| v.trim().to_ascii_uppercase()).filter(|v| !v.is_empty());
    choice.region = tidy(choice.region);
    choice.postal_code = tidy(choice.postal_code);
    if choice.region.as_ref().is_some_and(|r| r.chars().count() > 50)
        || choice.postal_code.as_ref().is_some_and(|p| p.chars().count() > 20)
    {
        return Err(ApiError::invalid_field("region", "region at most 50 characters, postal code at most 20"));
    }
    Ok(choice)
}

/// Chooses where `cart` ships and how, refusing (422) a destination no zone ships to or a method
/// its zone does not offer.
async fn choose_shipping(state: &AppState, cart: Cart, choice: ShippingChoice) -> Result<Json<CartResponse>, ApiError> {
    let choice = checked_destination(choice)?;
    let mut tried = cart.clone();
    tried.shipping = Some(choice.clone());
    let catalog = catalog_of(state, &tried).await?;
    let (response, problem) = quoted(state, &tried, &catalog).await?;
    if let Some(problem) = problem {
        let field = match problem {
            ShippingProblem::OutsideZones => "country",
            ShippingProblem::MethodNotOffered(_) => "method_id",
        };
        return Err(ApiError::invalid_field(field, problem.message(&choice.country)));
    }
    let saved = state.carts.set_details(&cart.id, &cart.codes, Some(&choice)).await?;
    saved.ok_or_else(|| ApiError::not_found("no such cart"))?;
    // Priced already: the cart saved is the one priced.
    Ok(Json(response))
}

/// Checks a line change's quantity and SKU, before anything is read or written.
fn check_line(sku: &str, quantity: i64) -> Result<(), ApiError> {
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::invalid_field("quantity", format!("must be 0 to {MAX_QUANTITY}")));
    }
    if !platform::sku::is_valid(sku) {
        return Err(ApiError::invalid_field("sku", "is not a SKU"));
    }
    Ok(())
}

/// Sets `sku` to `quantity` in `cart` and answers the cart priced. The catalog is asked once, for
/// the cart's SKUs and the new one: to refuse a SKU it does not sell (when adding) and to price.
async fn set_line(state: &AppState, cart: &Cart, sku: &str, quantity: i64) -> Result<Json<CartResponse>, ApiError> {
    let mut skus: Vec<String> = cart.lines.iter().map(|(s, _)| s.clone()).collect();
    if !skus.iter().any(|s| s == sku) {
        skus.push(sku.to_owned());
    }
    let catalog = state.catalog.skus(&skus).await.map_err(catalog_unavailable)?;
    if quantity > 0 && !catalog.contains_key(sku) {
        return Err(ApiError::invalid_field("sku", format!("the catalog does not sell {sku:?}")));
    }
    let first_line = cart.lines.is_empty() && quantity > 0;
    let cart = state.carts.set_quantity(&cart.id, sku, quantity, MAX_LINES).await?;
    if first_line {
        platform::telemetry::emf::business(crate::NAME, "CartsCreated", 1.0, platform::telemetry::emf::Unit::Count)
            .record();
    }
    let cart = cart.ok_or_else(|| ApiError::not_found("no such cart"))?;
    Ok(Json(priced(state, &cart, &catalog).await?))
}

/// A guest cart by id, refusing a user's cart (reached only through `/v1/cart`).
async fn guest_cart(state: &AppState, id: &str) -> Result<Cart, ApiError> {
    let not_found = || ApiError::not_found("no such cart");
    if !is_cart_id(id) {
        return Err(not_found());
    }
    let cart = state.carts.get(id).await?.ok_or_else(not_found)?;
    if cart.owner_id.is_some() {
        return Err(not_found());
    }
    Ok(cart)
}

/// Creates an empty guest cart. Its id is its bearer secret: keep it private.
#[utoipa::path(post, path = "/v1/carts", tag = "carts",
    responses((status = 201, description = "The new cart", body = CartResponse)))]
pub async fn create_cart(State(state): State<AppState>) -> Result<(StatusCode, Json<CartResponse>), ApiError> {
    let cart = Cart::new(new_cart_id(), None, CURRENCY);
    state.carts.create(&cart).await?;
    Ok((StatusCode::CREATED, respond(&state, cart).await?))
}

/// A guest cart, priced now.
#[utoipa::path(get, path = "/v1/carts/{id}", tag = "carts",
    params(("id" = String, Path, description = "The cart id")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
    ))]
pub async fn get_cart(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<CartResponse>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    respond(&state, cart).await
}

/// Sets the units of a SKU in a guest cart (0 removes it).
#[utoipa::path(put, path = "/v1/carts/{id}/items/{sku}", tag = "carts", request_body = QuantityRequest,
    params(("id" = String, Path, description = "The cart id"), ("sku" = String, Path, description = "The SKU")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
        (status = 422, description = "An unsold SKU, a quantity out of range, or too many SKUs", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn put_guest_item(
    State(state): State<AppState>,
    Path((id, sku)): Path<(String, String)>,
    Json(input): Json<QuantityRequest>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    check_line(&sku, input.quantity)?;
    set_line(&state, &cart, &sku, input.quantity).await
}

/// The signed-in shopper's cart, priced now (made, empty, on first use).
#[utoipa::path(get, path = "/v1/cart", tag = "carts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        docs::Unauthenticated,
    ))]
pub async fn get_my_cart(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    respond(&state, cart).await
}

/// Sets the units of a SKU in the signed-in shopper's cart (0 removes it).
#[utoipa::path(put, path = "/v1/cart/items/{sku}", tag = "carts", security(("bearer" = [])), request_body = QuantityRequest,
    params(("sku" = String, Path, description = "The SKU")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        docs::Unauthenticated,
        (status = 422, description = "An unsold SKU, a quantity out of range, or too many SKUs", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(sku = %sku, user.id = %user.sub, cart.id))]
pub async fn put_my_item(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(sku): Path<String>,
    Json(input): Json<QuantityRequest>,
) -> Result<Json<CartResponse>, ApiError> {
    check_line(&sku, input.quantity)?;
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    tracing::Span::current().record("cart.id", cart.id.as_str());
    set_line(&state, &cart, &sku, input.quantity).await
}

/// Brings a guest cart into the signed-in shopper's cart: units of a SKU in both are added, then
/// capped by the units available; the guest cart goes away.
#[utoipa::path(post, path = "/v1/cart/merge", tag = "carts", security(("bearer" = [])), request_body = MergeRequest,
    responses(
        (status = 200, description = "The shopper's cart after the merge", body = CartResponse),
        docs::Unauthenticated,
        (status = 404, description = "No such guest cart", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %user.sub, cart.id))]
pub async fn merge_cart(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<MergeRequest>,
) -> Result<Json<CartResponse>, ApiError> {
    let guest = guest_cart(&state, &input.cart_id).await?;
    let mine = state.carts.user_cart(&user.sub, CURRENCY).await?;
    tracing::Span::current().record("cart.id", mine.id.as_str());
    let mut skus: Vec<String> = guest.lines.iter().chain(&mine.lines).map(|(sku, _)| sku.clone()).collect();
    skus.sort_unstable();
    skus.dedup();
    let caps = state.catalog.available(&skus).await.map_err(catalog_unavailable)?;
    let merged = state
        .carts
        .merge(&guest.id, &user.sub, CURRENCY, &caps, MAX_LINES)
        .await?
        .ok_or_else(|| ApiError::not_found("no such cart"))?;
    respond(&state, merged).await
}

/// Enters a discount code on a guest cart.
#[utoipa::path(post, path = "/v1/carts/{id}/codes", tag = "carts", request_body = CodeRequest,
    params(("id" = String, Path, description = "The cart id")),
    responses(
        (status = 200, description = "The cart, priced with the code", body = CartResponse),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
        (status = 422, description = "The code is unknown or does not apply (the problem's type and detail say why: expired, minimum not met, used up, not combinable …)", content_type = "application/problem+json"),
    ))]
pub async fn post_guest_code(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<CodeRequest>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    add_code(&state, cart, &input.code).await
}

/// Takes a discount code off a guest cart.
#[utoipa::path(delete, path = "/v1/carts/{id}/codes/{code}", tag = "carts",
    params(("id" = String, Path, description = "The cart id"), ("code" = String, Path, description = "The code")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 404, description = "No such cart, or the cart has no such code", content_type = "application/problem+json"),
    ))]
pub async fn delete_guest_code(
    State(state): State<AppState>,
    Path((id, code)): Path<(String, String)>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    remove_code(&state, cart, &code).await
}

/// The shipping methods that ship a guest cart to a destination, priced for it.
#[utoipa::path(get, path = "/v1/carts/{id}/shipping-methods", tag = "carts", params(("id" = String, Path, description = "The cart id"), DestinationParams),
    responses(
        (status = 200, description = "The methods, cheapest first", body = ShippingOffers),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
        (status = 422, description = "A malformed destination, or one we do not ship to", content_type = "application/problem+json"),
    ))]
pub async fn guest_shipping_methods(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DestinationParams>,
) -> Result<Json<ShippingOffers>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    offers(&state, &cart, params).await
}

/// Chooses where a guest cart ships and how.
#[utoipa::path(put, path = "/v1/carts/{id}/shipping", tag = "carts", request_body = ShippingChoice,
    params(("id" = String, Path, description = "The cart id")),
    responses(
        (status = 200, description = "The cart, priced with its shipping and tax", body = CartResponse),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
        (status = 422, description = "A destination we do not ship to, or a method not offered there", content_type = "application/problem+json"),
    ))]
pub async fn put_guest_shipping(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(choice): Json<ShippingChoice>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = guest_cart(&state, &id).await?;
    choose_shipping(&state, cart, choice).await
}

/// Enters a discount code on the signed-in shopper's cart.
#[utoipa::path(post, path = "/v1/cart/codes", tag = "carts", security(("bearer" = [])), request_body = CodeRequest,
    responses(
        (status = 200, description = "The cart, priced with the code", body = CartResponse),
        docs::Unauthenticated,
        (status = 422, description = "The code is unknown or does not apply (the problem's type and detail say why)", content_type = "application/problem+json"),
    ))]
pub async fn post_my_code(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(input): Json<CodeRequest>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    add_code(&state, cart, &input.code).await
}

/// Takes a discount code off the signed-in shopper's cart.
#[utoipa::path(delete, path = "/v1/cart/codes/{code}", tag = "carts", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        docs::Unauthenticated,
        (status = 404, description = "The cart has no such code", content_type = "application/problem+json"),
    ))]
pub async fn delete_my_code(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(code): Path<String>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    remove_code(&state, cart, &code).await
}

/// The shipping methods that ship the signed-in shopper's cart to a destination.
#[utoipa::path(get, path = "/v1/cart/shipping-methods", tag = "carts", security(("bearer" = [])), params(DestinationParams),
    responses(
        (status = 200, description = "The methods, cheapest first", body = ShippingOffers),
        docs::Unauthenticated,
        (status = 422, description = "A malformed destination, or one we do not ship to", content_type = "application/problem+json"),
    ))]
pub async fn my_shipping_methods(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<DestinationParams>,
) -> Result<Json<ShippingOffers>, ApiError> {
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    offers(&state, &cart, params).await
}

/// Chooses where the signed-in shopper's cart ships and how.
#[utoipa::path(put, path = "/v1/cart/shipping", tag = "carts", security(("bearer" = [])), request_body = ShippingChoice,
    responses(
        (status = 200, description = "The cart, priced with its shipping and tax", body = CartResponse),
        docs::Unauthenticated,
        (status = 422, description = "A destination we do not ship to, or a method not offered there", content_type = "application/problem+json"),
    ))]
pub async fn put_my_shipping(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(choice): Json<ShippingChoice>,
) -> Result<Json<CartResponse>, ApiError> {
    let cart = state.carts.user_cart(&user.sub, CURRENCY).await?;
    choose_shipping(&state, cart, choice).await
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/carts", post(create_cart))
        .route("/v1/carts/{id}", get(get_cart))
        .route("/v1/carts/{id}/items/{sku}", put(put_guest_item))
        .route("/v1/carts/{id}/codes", post(post_guest_code))
        .route("/v1/carts/{id}/codes/{code}", axum::routing::delete(delete_guest_code))
        .route("/v1/carts/{id}/shipping-methods", get(guest_shipping_methods))
        .route("/v1/carts/{id}/shipping", put(put_guest_shipping))
        .route("/v1/cart", get(get_my_cart))
        .route("/v1/cart/items/{sku}", put(put_my_item))
        .route("/v1/cart/merge", post(merge_cart))
        .route("/v1/cart/codes", post(post_my_code))
        .route("/v1/cart/codes/{code}", axum::routing::delete(delete_my_code))
        .route("/v1/cart/shipping-methods", get(my_shipping_methods))
        .route("/v1/cart/shipping", put(put_my_shipping))
}
