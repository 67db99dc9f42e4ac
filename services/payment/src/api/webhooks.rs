//! `POST /v1/payments/webhooks/stripe`: Stripe's webhook. The raw body's `Stripe-Signature` is
//! verified before anything is parsed; each event id is recorded once so a redelivery is a no-op.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use platform::http::{ApiError, Json};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::domain::webhook::{DEFAULT_TOLERANCE_SECS, verify};

/// The acknowledgement Stripe gets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// Always true.
    pub received: bool,
    /// Whether this event id had been received before.
    pub duplicate: bool,
}

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Receives a Stripe event.
#[utoipa::path(post, path = "/v1/payments/webhooks/stripe", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, signed"),
    responses(
        (status = 200, description = "Received", body = WebhookAck),
        (status = 400, description = "Missing or bad signature, or not an event", content_type = "application/problem+json"),
    ))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let secret = state
        .stripe_webhook_secret
        .as_ref()
        .ok_or_else(|| ApiError::bad_request("webhooks are not accepted: no signing secret is configured"))?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("the Stripe-Signature header is missing"))?;
    verify(header, &body, secret.expose_secret(), chrono::Utc::now().timestamp(), DEFAULT_TOLERANCE_SECS)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let event: StripeEvent =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("the body is not a Stripe event"))?;
    let new = state.webhooks.record("stripe", &event.id, &event.kind).await.map_err(ApiError::internal)?;
    tracing::info!(stripe.event_id = %event.id, stripe.event_type = %event.kind, duplicate = !new, "stripe webhook received");
    Ok(Json(WebhookAck { received: true, duplicate: !new }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/payments/webhooks/stripe", post(stripe_webhook))
}
