//! Email verification: registration mails a link carrying a token (`user.email_verification_requested.v1`
//! through the outbox to the mailer); `POST /v1/auth/verify-email` with the token marks the
//! account's email verified, as long as the account still has that email.
//!
//! The token is the account id, the email and an expiry sealed with the service's key
//! (`KeyRing::seal`): only this service makes one, it opens with no store read, and it carries
//! nothing a reader of the event store could use but to verify that email.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use platform::events::Event;
use platform::http::{ApiError, Json};
use serde::Deserialize;
use serde_json::json;

use crate::domain::User;
use crate::{AppState, NAME};

/// How long a verification link works.
pub const VERIFY_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// The event the mailer sends the link from.
pub const REQUESTED: &str = "user.email_verification_requested.v1";

const PURPOSE: &str = "verify-email";

/// `POST /v1/auth/verify-email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token of the verification email.
    pub token: String,
}

/// The event asking the mailer to send `user` a verification link (written with the account).
pub fn request(state: &AppState, user: &User) -> Event {
    let expires_at = chrono::Utc::now() + VERIFY_LIFETIME;
    let token = state.keys.seal(&format!("{PURPOSE}\n{}\n{}\n{}", user.id, user.email, expires_at.timestamp()));
    Event::new(
        REQUESTED,
        NAME,
        json!({"user_id": user.id, "email": user.email, "token": token, "expires_at": expires_at}),
    )
    .with_subject(user.id.clone())
}

/// Marks the email a verification token was made for verified.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The email is verified"),
        (status = 400, description = "The token is not one of ours, has expired, or its account's email changed", content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    Json(body): Json<VerifyEmailRequest>,
) -> Result<StatusCode, ApiError> {
    let refused = || {
        ApiError::bad_request("the verification token is not valid (or has expired): ask for a new one by signing in")
    };
    let opened = state.keys.open(body.token.trim()).ok_or_else(refused)?;
    let mut parts = opened.split('\n');
    let (Some(PURPOSE), Some(user_id), Some(email), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused());
    };
    let expires: i64 = expires.parse().map_err(|_| refused())?;
    if chrono::Utc::now().timestamp() > expires {
        return Err(refused());
    }
    if !state.users.verify_email(user_id, email).await.map_err(ApiError::internal)? {
        return Err(refused());
    }
    tracing::info!(user.id = %user_id, "email verified");
    Ok(StatusCode::NO_CONTENT)
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/verify-email", post(verify_email))
}
