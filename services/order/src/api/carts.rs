//! Carts. Guest carts: `POST /v1/carts`, `GET /v1/carts/{id}`, `PUT /v1/carts/{id}/items/{sku}`
//! (the id is the cart's bearer secret). The signed-in shopper's persistent cart: `GET /v1/cart`,
//! `PUT /v1/cart/items/{sku}`, and `POST /v1/cart/merge` to bring a guest cart into it at login.
//! Every answer is priced from the catalog now, never from the client.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use platform::auth::AuthUser;
use platform::http::{ApiError, Json, Path, docs};
use serde::Deserialize;

use crate::domain::{Cart, CartResponse, MAX_LINES, MAX_QUANTITY, is_cart_id, new_cart_id, price};
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

/// `cart`, priced from the catalog now.
async fn respond(state: &AppState, cart: Cart) -> Result<Json<CartResponse>, ApiError> {
    let skus: Vec<String> = cart.lines.iter().map(|(sku, _)| sku.clone()).collect();
    let catalog =
        if skus.is_empty() { HashMap::new() } else { state.catalog.skus(&skus).await.map_err(catalog_unavailable)? };
    Ok(Json(price(&cart, &catalog)))
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
    Ok(Json(price(&cart.ok_or_else(|| ApiError::not_found("no such cart"))?, &catalog)))
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

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/carts", post(create_cart))
        .route("/v1/carts/{id}", get(get_cart))
        .route("/v1/carts/{id}/items/{sku}", put(put_guest_item))
        .route("/v1/cart", get(get_my_cart))
        .route("/v1/cart/items/{sku}", put(put_my_item))
        .route("/v1/cart/merge", post(merge_cart))
}
