//! Email verification: registration mails a link carrying a token (`user.email_verification_requested.v1`
//! through the outbox to the mailer); `POST /v1/auth/verify-email` with the token marks the
//! account's email verified, as long as the account still has that email.
//!
//! The token is the account id, the email and an expiry sealed with the service's key
//! (`KeyRing::seal`): only this service makes one, it opens with no store read, and it carries
//! nothing a reader of the event store could use but to verify that email.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use platform::auth::AuthUser;
use platform::events::Event;
use platform::http::{ApiError, Json, docs};
use serde::Deserialize;
use serde_json::json;

use crate::domain::User;
use crate::{AppState, NAME};

/// How long a verification link works.
pub const VERIFY_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// The event the mailer sends the link from.
pub const REQUESTED: &str = "user.email_verification_requested.v1";

const PURPOSE: &str = "verify-email";

/// Verification emails one account may ask for again in [`RESEND_WINDOW`].
pub const MAX_RESENDS: i64 = 5;

/// The window of [`MAX_RESENDS`].
pub const RESEND_WINDOW: Duration = Duration::from_secs(3600);

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
#[tracing::instrument(skip_all, fields(user.id))]
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
    if !state.users.verify_email(user_id, email, &verified(user_id, email)).await? {
        return Err(refused());
    }
    tracing::Span::current().record("user.id", user_id);
    tracing::info!(user.id = %user_id, "email verified");
    Ok(StatusCode::NO_CONTENT)
}

/// `user.email_verified.v1`: the email of `user_id` is proven its owner's (a followed link, or a
/// Cognito pool that verified it), so the orders placed as a guest with it become the account's.
pub(crate) fn verified(user_id: &str, email: &str) -> Event {
    let verified = platform::contracts::user::EmailVerified { user_id: user_id.to_owned(), email: email.to_owned() };
    Event::new(platform::contracts::user::EmailVerified::KIND, NAME, &verified).with_subject(user_id.to_owned())
}

/// Mails the signed-in user a new verification link (the first one lost, or expired).
#[utoipa::path(post, path = "/v1/users/me/verify-email", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way to the account's email"),
        docs::Unauthenticated,
        (status = 409, description = "The email is verified already", content_type = "application/problem+json"),
        (status = 429, description = "Too many links asked for; try again later", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn resend(State(state): State<AppState>, AuthUser(claims): AuthUser) -> Result<StatusCode, ApiError> {
    let account = super::signed_in_account(&state, &claims).await?;
    if account.email_verified {
        return Err(ApiError::conflict("the email is verified already"));
    }
    // Counted before sending, so parallel requests cannot pass the limit: a mailbox is not flooded.
    let key = format!("verify-mail:{}", account.user.id);
    let sent = state.cache.increment(&key, 1, RESEND_WINDOW).await?;
    if sent > MAX_RESENDS {
        let wait = state.cache.ttl(&key).await?.unwrap_or(RESEND_WINDOW);
        return Err(ApiError::too_many_requests(wait.as_secs()));
    }
    let event = request(&state, &account.user);
    if !state.users.request_verification(&account.user.id, &event).await? {
        // Verified meanwhile (or the account is gone, which the sign-in check just saw it was not).
        return Err(ApiError::conflict("the email is verified already"));
    }
    tracing::info!(user.id = %account.user.id, "verification email requested again");
    Ok(StatusCode::ACCEPTED)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/verify-email", post(verify_email)).route("/v1/users/me/verify-email", post(resend))
}
