//! Orders: `POST /v1/orders` (checkout; `Idempotency-Key` required), `GET /v1/orders/{id}`,
//! `GET /v1/orders`, `POST /v1/orders/{id}/cancel`; admins: `GET /admin/v1/orders?status=` (the
//! fulfillment queue) and `POST /admin/v1/orders/{id}/deliver`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use platform::address::AddressInput;
use platform::auth::{AdminUser, AuthUser, Claims, Role};
use platform::contracts::order::OrderEvent;
use platform::http::{
    ApiError, Json, Page, Path, Query, Validator, docs, idempotency_key, idempotency_key_reused, page_limit,
};
use platform::money::Money;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::domain::order::{Order, OrderStatus, is_order_id};
use crate::domain::{Cart, MAX_LINES, is_cart_id, price};
use crate::saga::{cancellation, compensating, order_event, placing};
use crate::store::{Advance, Placed};

/// `POST /v1/orders`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// The cart to check out: the shopper's persistent cart, or a guest cart (by its id).
    pub cart_id: String,
    /// Where the parcel goes.
    pub shipping_address: AddressInput,
    /// The payment provider's token of the shopper's payment method (`pm_…`; never card data).
    pub payment_method: String,
}

/// The answer to a checkout.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Placement {
    /// The order.
    pub id: String,
    /// `pending`: the saga has started.
    pub status: OrderStatus,
    /// What it costs.
    pub total: Money,
}

/// `GET /v1/orders` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1–100 (20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /admin/v1/orders` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    /// The status (`confirmed`, `shipped`…).
    pub status: String,
    /// Page size, 1–100 (20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn cursor(cursor: Option<&str>) -> Result<Option<&str>, ApiError> {
    match cursor {
        Some(c) if !is_order_id(c) => Err(ApiError::invalid_field("cursor", "is not a cursor this endpoint gave")),
        other => Ok(other),
    }
}

fn page(items: Vec<Order>, limit: usize) -> Page<Order> {
    Page::new(items, limit, |o| o.id.clone())
}

/// An order the caller may see (its owner, or an admin); 404 otherwise.
async fn visible(state: &AppState, user: &Claims, id: &str) -> Result<Order, ApiError> {
    let not_found = || ApiError::not_found(format!("no order {id:?}"));
    if !is_order_id(id) {
        return Err(not_found());
    }
    let order = state.orders.get(id).await?.ok_or_else(not_found)?;
    if order.customer_id != user.sub && user.role != Role::Admin {
        return Err(not_found());
    }
    Ok(order)
}

fn catalog_unavailable(error: platform::client::ClientError) -> ApiError {
    tracing::warn!(%error, "the catalog did not answer");
    ApiError::unavailable("the catalog is not answering; try again shortly")
}

/// Checks out a cart: its lines priced from the catalog now, the order written `pending` with
/// `order.placed.v1` and the stock reservation in one transaction, the cart emptied. The saga
/// takes it from there.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", security(("bearer" = [])), request_body = PlaceOrder,
    params(("Idempotency-Key" = String, Header, description = "Names this checkout: the same key and body answer the same order")),
    responses(
        (status = 202, description = "Placed; the saga runs", body = Placement),
        docs::NoIdempotencyKey,
        docs::Unauthenticated,
        (status = 404, description = "No such cart of the caller's", content_type = "application/problem+json"),
        (status = 409, description = "The cart kept changing during checkout", content_type = "application/problem+json"),
        (status = 422, description = "A bad address or payment method, an empty cart, lines not sold, or the key used with another body", content_type = "application/problem+json"),
    ))]
pub async fn place_order(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    Json(input): Json<PlaceOrder>,
) -> Result<(StatusCode, Json<Placement>), ApiError> {
    let key = idempotency_key(&headers)?;
    let hash = hex::encode(Sha256::digest(serde_json::to_string(&input).expect("a request serializes").as_bytes()));
    let answer = |order: &Order| {
        (
            StatusCode::ACCEPTED,
            Json(Placement { id: order.id.clone(), status: order.status, total: order.total.clone() }),
        )
    };
    if let Some((order, stored)) = state.orders.by_key(&user.sub, key).await? {
        if stored != hash {
            return Err(idempotency_key_reused());
        }
        return Ok(answer(&order));
    }

    let mut v = Validator::new();
    let address = input.shipping_address.clone().validated(&mut v);
    v.check(
        crate::domain::is_payment_method_token(&input.payment_method),
        "payment_method",
        "must be a payment method token from the payment provider (pm_…)",
    );
    v.finish()?;
    if !is_cart_id(&input.cart_id) {
        return Err(ApiError::not_found("no such cart"));
    }
    // A cart that changes between its read and the placement (another tab, or a stale cached
    // copy) places nothing: read it again from the store, a few times.
    let mut from_store = false;
    for _ in 0..PLACE_ATTEMPTS {
        let cart =
            if from_store { state.carts.refresh(&input.cart_id).await } else { state.carts.get(&input.cart_id).await };
        let cart = cart?.ok_or_else(|| ApiError::not_found("no such cart"))?;
        if cart.lines.is_empty() && !from_store {
            // An empty copy may be stale: the store decides.
            from_store = true;
            continue;
        }
        let (order, version) = match checkout(&state, &user.sub, &input, cart, &address, key, &hash).await? {
            Checkout::Answer(order) => return Ok(answer(&order)),
            Checkout::Order(order, version) => (order, version),
        };
        let events = placing(&order);
        let cart = Some((input.cart_id.as_str(), version));
        let placed = match state.orders.place(&order, key, &hash, cart, &events).await? {
            Placed::New(order) => {
                state.outbox.notify_one();
                metrics::counter!("orders_placed_total").increment(1);
                order
            }
            Placed::Existing(order) => order,
            Placed::KeyReused => return Err(idempotency_key_reused()),
            Placed::CartChanged => {
                from_store = true;
                continue;
            }
        };
        // The order emptied the cart: renew its copy (again, for a repeat whose first try stopped
        // short of it).
        if let Err(error) = state.carts.refresh(&input.cart_id).await {
            tracing::warn!(error = %platform::error::cause_chain(&error), "could not renew an emptied cart's copy");
        }
        return Ok(answer(&placed));
    }
    Err(ApiError::conflict("the cart kept changing during checkout; try again"))
}

/// Tries of a checkout whose cart changed under it.
const PLACE_ATTEMPTS: usize = 3;

/// What reading and pricing the cart found.
enum Checkout {
    /// The order to answer with (the same key placed it meanwhile).
    Answer(Order),
    /// The order to place, and the version of the cart it was made from.
    Order(Order, u64),
}

/// Prices `cart` to check out, and makes the order.
async fn checkout(
    state: &AppState,
    customer_id: &str,
    input: &PlaceOrder,
    cart: Cart,
    address: &AddressInput,
    key: &str,
    hash: &str,
) -> Result<Checkout, ApiError> {
    if cart.owner_id.as_ref().is_some_and(|owner| owner != customer_id) {
        return Err(ApiError::not_found("no such cart"));
    }
    let skus: Vec<String> = cart.lines.iter().map(|(sku, _)| sku.clone()).collect();
    if skus.is_empty() {
        // A request with the same key may have placed the order (and emptied the cart) since.
        if let Some((order, stored)) = state.orders.by_key(customer_id, key).await? {
            return if stored == hash { Ok(Checkout::Answer(order)) } else { Err(idempotency_key_reused()) };
        }
        return Err(ApiError::invalid_field("cart_id", "the cart is empty"));
    }
    if skus.len() > MAX_LINES {
        return Err(ApiError::invalid_field("cart_id", format!("an order holds at most {MAX_LINES} different SKUs")));
    }
    let catalog = state.catalog.skus(&skus).await.map_err(catalog_unavailable)?;
    let priced = price(&cart, &catalog);
    if !priced.unavailable.is_empty() {
        let skus: Vec<&str> = priced.unavailable.iter().map(|u| u.sku.as_str()).collect();
        return Err(ApiError::invalid_field("cart_id", format!("the catalog does not sell {} now", skus.join(", "))));
    }
    let order = Order::pending(
        customer_id.to_owned(),
        priced.items,
        priced.subtotal,
        address.clone(),
        input.payment_method.clone(),
        state.step_timeout,
    );
    Ok(Checkout::Order(order, cart.version))
}

/// An order of the caller's (any, for an admin), with its history.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The order", body = Order),
        docs::Unauthenticated,
        (status = 404, description = "No such order of the caller's", content_type = "application/problem+json"),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(visible(&state, &user, &id).await?))
}

/// The shipping label of an order of the caller's (any, for an admin): a PDF with the addresses,
/// so it is served only here, never from a public URL.
#[utoipa::path(get, path = "/v1/orders/{id}/label", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The label", content_type = "application/pdf"),
        docs::Unauthenticated,
        (status = 404, description = "No such order of the caller's, or not shipped yet", content_type = "application/problem+json"),
    ))]
pub async fn get_label(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let order = visible(&state, &user, &id).await?;
    if order.label_url.is_none() {
        return Err(ApiError::not_found("the order has no label yet"));
    }
    let label = state
        .objects
        .get(&crate::saga::label_key(&order.id))
        .await?
        .ok_or_else(|| ApiError::not_found("the order has no label yet"))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("inline; filename=\"label-{}.pdf\"", order.id)),
            (axum::http::header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        label.bytes,
    )
        .into_response())
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, description = "A page of orders", body = Page<Order>),
        docs::Unauthenticated,
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<PageParams>,
) -> Result<Json<Page<Order>>, ApiError> {
    let limit = page_limit(params.limit)?;
    let cursor = cursor(params.cursor.as_deref())?;
    let items = state.orders.by_customer(&user.sub, cursor, limit).await?;
    Ok(Json(page(items, limit)))
}

/// Cancels an order that has not left: its stock is released and its payment voided (or
/// refunded, when already captured).
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "Cancelled", body = Order),
        (status = 404, description = "No such order of the caller's", content_type = "application/problem+json"),
        (status = 409, description = "It has shipped, or is over", content_type = "application/problem+json"),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order = visible(&state, &user, &id).await?;
    if order.status == OrderStatus::Cancelled {
        return Ok(Json(order));
    }
    let from = [OrderStatus::Pending, OrderStatus::Reserved, OrderStatus::Paid, OrderStatus::Confirmed];
    let reason = "cancelled";
    let advance = compensating(OrderStatus::Cancelled, reason, state.step_timeout);
    let moved = state.orders.advance(&order.id, &from, &advance, &cancellation(&order, reason, None)).await;
    match moved? {
        Some(cancelled) => {
            state.outbox.notify_one();
            Ok(Json(cancelled))
        }
        None => {
            let now = state.orders.get(&order.id).await?.unwrap_or(order);
            Err(ApiError::conflict(format!("a {} order can no longer be cancelled", now.status.as_str())))
        }
    }
}

/// Orders in a status, oldest first: the fulfillment queue.
#[utoipa::path(get, path = "/admin/v1/orders", tag = "orders", security(("bearer" = [])), params(StatusParams),
    responses(
        (status = 200, description = "A page of orders", body = Page<Order>),
        docs::NotAdmin,
        (status = 422, description = "An unknown status", content_type = "application/problem+json"),
    ))]
pub async fn admin_list_orders(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(params): Query<StatusParams>,
) -> Result<Json<Page<Order>>, ApiError> {
    let status = OrderStatus::parse(&params.status)
        .ok_or_else(|| ApiError::invalid_field("status", format!("{:?} is not an order status", params.status)))?;
    let limit = page_limit(params.limit)?;
    let cursor = cursor(params.cursor.as_deref())?;
    let items = state.orders.by_status(status, cursor, limit).await?;
    Ok(Json(page(items, limit)))
}

/// Marks a shipped order delivered.
#[utoipa::path(post, path = "/admin/v1/orders/{id}/deliver", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "Delivered", body = Order),
        docs::NotAdmin,
        (status = 404, description = "No such order", content_type = "application/problem+json"),
        (status = 409, description = "Not shipped", content_type = "application/problem+json"),
    ))]
pub async fn deliver_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order = visible(&state, &admin, &id).await?;
    if order.status == OrderStatus::Delivered {
        return Ok(Json(order));
    }
    // The audit still due keeps its deadline.
    let advance = Advance { steps: vec![(OrderStatus::Delivered, None)], deadline: order.deadline, label: None };
    let told = order_event(OrderEvent::DELIVERED, &order, OrderStatus::Delivered, None, None);
    match state.orders.advance(&order.id, &[OrderStatus::Shipped], &advance, &[told]).await? {
        Some(delivered) => {
            state.outbox.notify_one();
            Ok(Json(delivered))
        }
        None => Err(ApiError::conflict(format!("a {} order cannot be delivered", order.status.as_str()))),
    }
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", post(place_order).get(list_orders))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/label", get(get_label))
        .route("/v1/orders/{id}/cancel", post(cancel_order))
        .route("/admin/v1/orders", get(admin_list_orders))
        .route("/admin/v1/orders/{id}/deliver", post(deliver_order))
}
