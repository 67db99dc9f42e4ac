//! The user service's HTTP API.

pub mod addresses;
pub mod admin;
pub mod auth;
pub mod cognito;
pub mod jwks;
pub mod mfa;
pub mod password_reset;
pub mod profile;
pub mod verify_email;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use platform::auth::Claims;
use platform::http::ApiError;
use utoipa::OpenApi;

use crate::AppState;
use crate::domain::{Account, totp};

#[derive(OpenApi)]
#[openapi(
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, cognito::cognito_sign_in,
        profile::get_me, profile::update_me, profile::change_password, verify_email::verify_email, verify_email::resend,
        addresses::list_addresses, addresses::add_address, addresses::delete_address,
        password_reset::request_password_reset, password_reset::confirm_password_reset,
        mfa::setup, mfa::verify,
        admin::search_users,
        jwks::jwks,
    ),
    components(schemas(
        auth::RegisterRequest, auth::LoginRequest, auth::RefreshRequest, auth::TokenResponse, cognito::CognitoSignIn,
        profile::UpdateProfileRequest, profile::ChangePasswordRequest, verify_email::VerifyEmailRequest, profile::Profile, crate::domain::User, crate::domain::Address, crate::domain::AddressInput,
        platform::http::Page<crate::domain::Address>, password_reset::PasswordResetRequest, password_reset::PasswordResetConfirm,
        mfa::MfaSetupResponse, mfa::MfaVerifyRequest, platform::http::Page<crate::domain::User>, platform::auth::Role,
    )),
    tags((name = "auth", description = "Accounts, tokens and sessions"), (name = "admin", description = "Admin API"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(cognito::router())
        .merge(profile::router())
        .merge(addresses::router())
        .merge(password_reset::router())
        .merge(verify_email::router())
        .merge(mfa::router())
        .merge(admin::router())
        .merge(jwks::router())
}

/// The account a valid access token names; 401 when it was deleted since the token was issued.
pub async fn signed_in_account(state: &AppState, claims: &Claims) -> Result<Account, ApiError> {
    state.users.by_id(&claims.sub).await?.ok_or_else(account_gone)
}

/// Whether `code` is a valid TOTP code of `account`'s secret now, in a time step later than the last
/// one accepted; an accepted step is recorded (confirming enrolment), so a code works once. `false`
/// when the account has no secret.
pub async fn accept_totp(state: &AppState, account: &Account, code: &str) -> Result<bool, ApiError> {
    let Some(secret) = account.mfa_secret.as_deref() else { return Ok(false) };
    match totp::verify(secret, code, chrono::Utc::now().timestamp(), account.mfa_last_step) {
        Some(step) => Ok(state.users.use_mfa_step(&account.user.id, step).await?),
        None => Ok(false),
    }
}

/// The answer for a valid token whose account no longer exists.
pub fn account_gone() -> ApiError {
    ApiError::unauthorized("the account no longer exists")
}

/// The address of the client (behind the trusted proxies), when known.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let address = state.tokens.client.of(&parts.headers, peer);
        Ok(ClientIp(address.map(platform::http::rate_limit::bucket)))
    }
}
