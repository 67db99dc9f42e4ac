//! TOTP enrolment: `POST /v1/auth/mfa/setup` makes a secret and returns its `otpauth://` URI;
//! `POST /v1/auth/mfa/verify` confirms it with a code. Once confirmed, every login needs a code.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use platform::auth::AuthUser;
use platform::http::{ApiError, Json};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::domain::totp;

/// A new TOTP secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaSetupResponse {
    /// The secret, base32.
    pub secret: String,
    /// The URI an authenticator app scans.
    pub otpauth_uri: String,
}

/// `POST /v1/auth/mfa/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The current 6-digit code.
    pub code: String,
}

/// Starts (or restarts, while unconfirmed) TOTP enrolment.
#[utoipa::path(post, path = "/v1/auth/mfa/setup", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "A secret to enrol", body = MfaSetupResponse),
        (status = 409, description = "A second factor is already confirmed", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn setup(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
) -> Result<Json<MfaSetupResponse>, ApiError> {
    let account = super::signed_in_account(&state, &claims).await?;
    if account.mfa_confirmed {
        return Err(ApiError::conflict("a second factor is already confirmed for this account"));
    }
    let secret = totp::new_secret();
    state.users.set_mfa_secret(&claims.sub, &secret).await?;
    Ok(Json(MfaSetupResponse { otpauth_uri: totp::otpauth_uri("Shop", &account.user.email, &secret), secret }))
}

/// Confirms TOTP enrolment with a code.
#[utoipa::path(post, path = "/v1/auth/mfa/verify", tag = "auth", request_body = MfaVerifyRequest, security(("bearer" = [])),
    responses(
        (status = 204, description = "The second factor is confirmed"),
        (status = 409, description = "No enrolment was started", content_type = "application/problem+json"),
        (status = 422, description = "The code is not valid", content_type = "application/problem+json"),
        (status = 429, description = "Too many codes tried (throttled as sign-in is)", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn verify(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    client: super::ClientIp,
    Json(body): Json<MfaVerifyRequest>,
) -> Result<StatusCode, ApiError> {
    let account = super::signed_in_account(&state, &claims).await?;
    if account.mfa_secret.is_none() {
        return Err(ApiError::conflict("start with POST /v1/auth/mfa/setup"));
    }
    // Six digits are guessable: codes are throttled as passwords are.
    let throttle = super::auth::Throttle::new("mfa", &account.user.id, client);
    throttle.admit(&state).await?;
    if !super::accept_totp(&state, &account, &body.code).await? {
        return Err(ApiError::invalid_field("code", "is not a valid code (or was used already)"));
    }
    throttle.succeeded(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/mfa/setup", post(setup)).route("/v1/auth/mfa/verify", post(verify))
}
