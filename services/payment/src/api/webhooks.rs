//! `POST /v1/payments/webhooks/stripe`: Stripe's webhook. The raw body's `Stripe-Signature` is
//! verified before anything is parsed; the event is applied to the payment it is about (each
//! change conditional on the payment's state, so a redelivery changes nothing) and its id
//! recorded.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use platform::http::{ApiError, Json};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::AppState;
use crate::app::payments::{PaymentError, StripeEvent};
use crate::domain::webhook::{DEFAULT_TOLERANCE_SECS, verify};

/// The acknowledgement Stripe gets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// Always true.
    pub received: bool,
    /// Whether this event id had been received before.
    pub duplicate: bool,
}

/// Receives a Stripe event.
#[utoipa::path(post, path = "/v1/payments/webhooks/stripe", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, signed"),
    responses(
        (status = 200, description = "Received", body = WebhookAck),
        (status = 400, description = "Missing or bad signature, or not an event", content_type = "application/problem+json"),
        (status = 503, description = "Not applied now; Stripe retries", content_type = "application/problem+json"),
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
    if event.id.is_empty() || event.id.len() > 255 {
        return Err(ApiError::bad_request("the event has no valid id"));
    }
    let applied = state.payments.apply_stripe_event(&event).await.map_err(|error| match error {
        PaymentError::Store(_) => ApiError::unavailable("the event could not be applied now"),
        other => ApiError::internal(other),
    })?;
    let new = state.payments.store().record_webhook("stripe", &event.id, &event.kind).await?;
    tracing::info!(stripe.event_id = %event.id, stripe.event_type = %event.kind, applied, duplicate = !new,
        "stripe webhook received");
    Ok(Json(WebhookAck { received: true, duplicate: !new }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/payments/webhooks/stripe", post(stripe_webhook))
}
