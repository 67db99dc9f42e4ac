//! Orders: `POST /v1/orders` (checkout, signed in or as a guest; `Idempotency-Key` required),
//! `GET /v1/orders/{id}` (a guest's with `?token=`), `GET /v1/orders`,
//! `POST /v1/orders/{id}/cancel`; admins: `GET /admin/v1/orders?status=` (the fulfillment queue),
//! `POST /admin/v1/orders/{id}/deliver` and `POST /admin/v1/orders/{id}/refunds`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use platform::address::AddressInput;
use platform::auth::{AdminUser, AuthUser, Claims, MaybeUser, Role};
use platform::http::{ApiError, Json, Page, Path, Query, docs, idempotency_key, idempotency_key_reused, page_limit};
use platform::money::Money;
use platform::telemetry::trace::TraceContext;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::app::checkout::{self, CheckoutError};
use crate::app::orders;
use crate::domain::order::{Order, OrderStatus, is_order_id};

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
    /// A guest's email (checking out without an account: required then, and the cart must be a
    /// guest cart). Its emails go there, and an account later verified with it takes the order.
    /// Ignored when signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The answer to a checkout.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Placement {
    /// The order.
    pub id: String,
    /// `pending`: the saga has started.
    pub status: OrderStatus,
    /// What it costs: the breakdown's grand total, which the payment authorizes.
    pub total: Money,
    /// The whole price the order was placed at (what the cart showed).
    pub pricing: crate::domain::pricing::Breakdown,
    /// A guest's order: its secret token, which reads it (`GET /v1/orders/{id}?token=…`; the
    /// confirmation email carries it too). Keep it private.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /v1/orders/{id}` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// A guest's order token (from the checkout's answer or the confirmation email).
    pub token: Option<String>,
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

impl From<orders::RefundError> for ApiError {
    fn from(error: orders::RefundError) -> Self {
        use crate::domain::refund::RefundRefusal;
        match error {
            orders::RefundError::Refused(RefundRefusal::Status(_)) => ApiError::conflict(error.to_string()),
            orders::RefundError::Refused(RefundRefusal::Invalid(field, message)) => {
                ApiError::invalid_field(&field, message)
            }
            orders::RefundError::KeyReused => idempotency_key_reused(),
            orders::RefundError::KeptChanging => ApiError::conflict(error.to_string()),
            orders::RefundError::Store(error) => error.into(),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::KeyReused => idempotency_key_reused(),
            CheckoutError::CartNotFound => ApiError::not_found(error.to_string()),
            CheckoutError::Invalid(fields) => ApiError::validation(fields),
            CheckoutError::CatalogUnavailable(ref cause) => {
                tracing::warn!(error = %cause, "the catalog did not answer");
                ApiError::unavailable(error.to_string())
            }
            CheckoutError::CartKeptChanging => ApiError::conflict(error.to_string()),
            CheckoutError::CodeRefused(reason, detail) => {
                ApiError::unprocessable(crate::api::carts::code_problem(&reason), detail)
            }
            CheckoutError::Pricing(error) => error.into(),
            CheckoutError::Store(error) => error.into(),
        }
    }
}

/// Checks out a cart: its lines priced from the catalog now, the order written `pending` with
/// `order.placed.v1` and the stock reservation in one transaction, the cart emptied. The saga
/// takes it from there.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", security((), ("bearer" = [])), request_body = PlaceOrder,
    params(("Idempotency-Key" = String, Header, description = "Names this checkout: the same key and body answer the same order")),
    responses(
        (status = 202, description = "Placed; the saga runs", body = Placement),
        docs::NoIdempotencyKey,
        docs::Unauthenticated,
        (status = 404, description = "No such cart of the caller's (a guest: no such guest cart)", content_type = "application/problem+json"),
        (status = 409, description = "The cart kept changing during checkout", content_type = "application/problem+json"),
        (status = 422, description = "A bad address, email or payment method, an empty cart, lines not sold, or the key used with another body", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn place_order(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    trace: TraceContext,
    headers: HeaderMap,
    Json(input): Json<PlaceOrder>,
) -> Result<(StatusCode, Json<Placement>), ApiError> {
    let (customer_id, guest_email) = match user {
        Some(user) => {
            tracing::Span::current().record("user.id", user.sub.as_str());
            (user.sub, None)
        }
        None => {
            let email = input
                .email
                .as_deref()
                .ok_or_else(|| ApiError::invalid_field("email", "is required to check out without signing in"))?;
            let email = platform::email::normalize(email)
                .ok_or_else(|| ApiError::invalid_field("email", "is not an email address"))?;
            (crate::domain::order::guest_customer_id(&email), Some(email))
        }
    };
    let request = checkout::PlaceOrder {
        customer_id,
        guest_email,
        key: idempotency_key(&headers)?.to_owned(),
        fingerprint: checkout::fingerprint(&input),
        cart_id: input.cart_id,
        shipping_address: input.shipping_address,
        payment_method: input.payment_method,
        trace,
    };
    let order = state.checkout.place(&request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Placement {
            id: order.id,
            status: order.status,
            total: order.total,
            pricing: order.pricing,
            token: order.token,
        }),
    ))
}

/// An order of the caller's (any, for an admin), with its history; a guest's order with its token.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The order"), ReadParams),
    responses(
        (status = 200, description = "The order", body = Order),
        docs::Unauthenticated,
        (status = 404, description = "No such order of the caller's, or not one the token opens", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(order.id = %id))]
pub async fn get_order(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<axum::response::Response, ApiError> {
    let order = match (params.token, user) {
        // The token opens its own order and nothing else, signed in or not.
        (Some(token), _) => {
            let not_found = || ApiError::not_found(format!("no order {id:?} this token opens"));
            let order = if is_order_id(&id) { state.orders.get(&id).await? } else { None };
            order.filter(|order| crate::domain::order::token_opens(order, &token)).ok_or_else(not_found)?
        }
        (None, Some(user)) => visible(&state, &user, &id).await?,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "this endpoint needs an access token (Authorization: Bearer …), or a guest order's ?token=",
            ));
        }
    };
    // Personal: never kept by a shared cache.
    Ok(([(axum::http::header::CACHE_CONTROL, "private, no-store")], Json(order)).into_response())
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
#[tracing::instrument(skip_all, fields(order.id = %id, user.id = %user.sub))]
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
        .get(&crate::label::label_key(&order.id))
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
#[tracing::instrument(skip_all, fields(order.id = %id, user.id = %user.sub))]
pub async fn cancel_order(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order = visible(&state, &user, &id).await?;
    Ok(Json(orders::cancel(&state.saga, order).await?))
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
#[tracing::instrument(skip_all, fields(order.id = %id, user.id = %admin.sub))]
pub async fn deliver_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order = visible(&state, &admin, &id).await?;
    Ok(Json(orders::deliver(&state.saga, order).await?))
}

/// Refunds units of a shipped order's lines, and its shipping, at what the shopper paid for them
/// (after discounts, tax included, from the order's breakdown); the payment refunds that amount.
#[utoipa::path(post, path = "/admin/v1/orders/{id}/refunds", tag = "orders", security(("bearer" = [])),
    request_body = crate::domain::refund::RefundRequest,
    params(("id" = String, Path, description = "The order"),
        ("Idempotency-Key" = String, Header, description = "Names this refund: sent again, it refunds once")),
    responses(
        (status = 200, description = "Refunded: the order with its refunds", body = Order),
        docs::NoIdempotencyKey,
        docs::NotAdmin,
        (status = 404, description = "No such order", content_type = "application/problem+json"),
        (status = 409, description = "Not shipped (cancel it instead), or already refunded whole", content_type = "application/problem+json"),
        (status = 422, description = "Units not in the order or refunded already, shipping not paid or refunded, or the key used with another refund", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(order.id = %id, user.id = %admin.sub))]
pub async fn refund_order(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(input): Json<crate::domain::refund::RefundRequest>,
) -> Result<Json<Order>, ApiError> {
    let key = idempotency_key(&headers)?.to_owned();
    let order = visible(&state, &admin, &id).await?;
    Ok(Json(orders::refund(state.orders.as_ref(), order, &input, &key).await?))
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
        .route("/admin/v1/orders/{id}/refunds", post(refund_order))
}
