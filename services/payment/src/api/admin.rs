//! Admin payment tools: an order's payments, one payment with its transaction log and refunds, and
//! refunds (`Idempotency-Key` required: the same key and body answer the first response again;
//! the same key with another body is a 422).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Page, Path, Query, docs, idempotency_key, idempotency_key_reused};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::app::payments::PaymentError;
use crate::domain::payment::{LogEntry, Payment, Refund};
use crate::store::KeyClaim;

/// The idempotency scope of refunds.
const REFUND_SCOPE: &str = "admin-refund";

/// `GET /admin/v1/payments` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The order.
    pub order_id: String,
}

/// A payment with its transaction log and refunds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentDetail {
    /// The payment.
    #[serde(flatten)]
    pub payment: Payment,
    /// Every state change, oldest first.
    pub log: Vec<LogEntry>,
    /// Its refunds, oldest first.
    pub refunds: Vec<Refund>,
}

/// `POST /admin/v1/payments/{id}/refund`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units to refund; all that is left when absent.
    #[serde(default)]
    pub amount: Option<i64>,
    /// Why (1–200 characters; `requested by customer` when absent).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer of a refund.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundResponse {
    /// The refund.
    pub refund: Refund,
    /// The payment after it.
    pub payment: Payment,
}

/// The payments of an order.
///
/// An order has one payment, so one page: `next_cursor` is always null.
#[utoipa::path(get, path = "/admin/v1/payments", tag = "payments", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The order's payments", body = Page<Payment>),
        docs::NotAdmin,
    ))]
#[tracing::instrument(skip_all, fields(order.id, user.id = %admin.sub))]
pub async fn list_payments(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<Payment>>, ApiError> {
    if params.order_id.is_empty() || params.order_id.len() > 128 {
        return Err(ApiError::invalid_field("order_id", "must be 1 to 128 characters"));
    }
    tracing::Span::current().record("order.id", params.order_id.as_str());
    let payment = state.payments.store().by_order(&params.order_id).await?;
    Ok(Json(Page::whole(payment.into_iter().collect())))
}

/// A payment with its transaction log and refunds.
// Its own operation id: the shopper's `GET /v1/payments/{id}` is `get_payment`.
#[utoipa::path(get, path = "/admin/v1/payments/{id}", tag = "payments", operation_id = "admin_get_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment")),
    responses(
        (status = 200, description = "The payment", body = PaymentDetail),
        docs::NotAdmin,
        (status = 404, description = "No such payment", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(payment.id = %id, user.id = %admin.sub))]
pub async fn get_payment(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentDetail>, ApiError> {
    let store = state.payments.store();
    let not_found = || ApiError::not_found(format!("no payment {id:?}"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let payment = store.get(&id).await?.ok_or_else(not_found)?;
    let log = store.log(&id).await?;
    let refunds = store.refunds(&id).await?;
    Ok(Json(PaymentDetail { payment, log, refunds }))
}

/// Refunds (part of) a captured payment, at most what is left of the capture.
#[utoipa::path(post, path = "/admin/v1/payments/{id}/refund", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment"),
        ("Idempotency-Key" = String, Header, description = "Names this refund: the same key and body answer the same response")),
    request_body = RefundRequest,
    responses(
        (status = 200, description = "Refunded", body = RefundResponse),
        docs::NoIdempotencyKey,
        docs::NotAdmin,
        (status = 404, description = "No such payment", content_type = "application/problem+json"),
        (status = 409, description = "Not captured, or the same key in flight", content_type = "application/problem+json"),
        (status = 422, description = "More than is left, a bad amount, or the key used with another body", content_type = "application/problem+json"),
        (status = 503, description = "The provider is unavailable; retry with the same key", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(payment.id = %id, user.id = %admin.sub))]
pub async fn refund_payment(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(input): Json<RefundRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let canonical = serde_json::to_string(&input).expect("a request serializes");
    let hash = hex::encode(Sha256::digest(format!("{id}\n{canonical}").as_bytes()));
    let store = state.payments.store();
    match store.claim_key(REFUND_SCOPE, key, &hash).await? {
        KeyClaim::New => {}
        KeyClaim::Done(status, body) => return Ok(stored_response(status, body)),
        KeyClaim::Mismatch => return Err(idempotency_key_reused()),
        KeyClaim::InProgress => return Err(ApiError::conflict("a request with this Idempotency-Key is in progress")),
    }
    let answer = refund(&state, &id, key, &input).await;
    match &answer {
        // Kept: the same request gets the same answer.
        Ok(body) => {
            let body = serde_json::to_string(body).expect("a response serializes");
            store.complete_key(REFUND_SCOPE, key, 200, &body).await?;
        }
        // A conflict (nothing captured yet) may pass; every other refusal is the request's own.
        Err(error) if error.status().is_client_error() && error.status() != StatusCode::CONFLICT => {
            let body = serde_json::to_string(&error.problem()).expect("a problem serializes");
            store.complete_key(REFUND_SCOPE, key, error.status().as_u16(), &body).await?;
        }
        // Not kept: the client may retry with the same key (and the refund carries on).
        Err(_) => store.release_key(REFUND_SCOPE, key).await?,
    }
    answer.map(|body| Json(body).into_response())
}

async fn refund(state: &AppState, id: &str, key: &str, input: &RefundRequest) -> Result<RefundResponse, ApiError> {
    let reason = input.reason.as_deref().map(str::trim).unwrap_or("requested by customer");
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::invalid_field("reason", "must be 1 to 200 characters"));
    }
    if input.amount.is_some_and(|a| a <= 0) {
        return Err(ApiError::invalid_field("amount", "must be positive"));
    }
    let store = state.payments.store();
    let payment = store.get(id).await?;
    let payment = payment.ok_or_else(|| ApiError::not_found(format!("no payment {id:?}")))?;
    let first_time = store.get_refund(&crate::app::payments::refund_id(&payment.id, key)).await?.is_none();
    if first_time {
        if !payment.status.is_charged() && payment.refunded == 0 {
            return Err(ApiError::conflict(format!("a {} payment has nothing to refund", payment.status.as_str())));
        }
        if let Some(amount) = input.amount
            && amount > payment.refundable()
        {
            return Err(over_refund(payment.refundable()));
        }
    }
    match state.payments.refund(&payment, input.amount, reason, key, None).await {
        Ok((payment, refund)) => Ok(RefundResponse { refund, payment }),
        Err(PaymentError::Unavailable(_)) => {
            Err(ApiError::unavailable("the payment provider is unavailable; retry with the same Idempotency-Key"))
        }
        Err(PaymentError::Provider(message)) => Err(ApiError::unprocessable(
            "refund-refused",
            format!("the payment provider refused the refund: {message}"),
        )),
        Err(other) => Err(other.into()),
    }
}

fn over_refund(refundable: i64) -> ApiError {
    ApiError::invalid_field("amount", format!("at most {refundable} may still be refunded"))
}

fn stored_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    (status, [(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/payments", get(list_payments))
        .route("/admin/v1/payments/{id}", get(get_payment))
        .route("/admin/v1/payments/{id}/refund", post(refund_payment))
}
