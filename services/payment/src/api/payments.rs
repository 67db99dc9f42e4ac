//! `GET /v1/payments/{id}`: a payment, for its owner (or an admin); anyone else gets 404.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use platform::auth::{AuthUser, Role};
use platform::http::{ApiError, Json, Path, docs};
use platform::money::Money;
use serde::Serialize;

use crate::AppState;
use crate::domain::payment::{Payment, PaymentStatus};

/// A payment as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// `pay_…`.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The amount.
    pub amount: Money,
    /// The provider's reference.
    pub provider_ref: Option<String>,
    /// Minor units captured.
    pub captured: i64,
    /// Minor units refunded.
    pub refunded: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id,
            order_id: p.order_id,
            status: p.status,
            amount: p.amount,
            provider_ref: p.provider_ref,
            captured: p.captured,
            refunded: p.refunded,
            created_at: p.created_at,
        }
    }
}

/// A payment of the signed-in shopper's (any, for an admin).
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment")),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        docs::Unauthenticated,
        (status = 404, description = "No such payment of the caller's", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(payment.id = %id, user.id = %user.sub))]
pub async fn get_payment(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let not_found = || ApiError::not_found(format!("no payment {id:?}"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let payment = state.payments.store().get(&id).await?.ok_or_else(not_found)?;
    if payment.customer_id != user.sub && user.role != Role::Admin {
        return Err(not_found());
    }
    Ok(Json(payment.into()))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/payments/{id}", get(get_payment))
}
