//! Registration, login, refresh and logout.
//!
//! A login starts a session: a family of refresh tokens. Each refresh spends the presented token
//! and returns a new pair; presenting a spent token again (a stolen token replayed) revokes the
//! whole family. Repeated failed logins are throttled per account and per client address, and a
//! failed login says nothing about whether the email exists.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use platform::auth::{Claims, Role};
use platform::http::{ApiError, Json, Validator};
use serde::{Deserialize, Serialize};

use super::{ClientIp, accept_totp};
use crate::AppState;
use crate::domain::{
    Account, User, check_password, hash_token, new_secret_token, normalize_email, password, validated_name,
};
use crate::store::{Rotation, Session, StoreError};

/// Failed logins an account may have in a window before it is throttled.
pub const MAX_ACCOUNT_FAILURES: i64 = 5;
/// Failed logins a client address may have in a window before it is throttled.
pub const MAX_ADDRESS_FAILURES: i64 = 20;
/// The throttling window.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// `POST /v1/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address (the login name).
    pub email: String,
    /// At least 10 characters, not a common password.
    pub password: String,
    /// Display name.
    pub name: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// The current TOTP code, for accounts with a second factor (every admin).
    #[serde(default)]
    pub totp: Option<String>,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    pub refresh_token: String,
}

/// A signed-in user's tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The user.
    pub user: User,
    /// A short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// An opaque, single-use token for `POST /v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

fn access_token(state: &AppState, user: &User, amr: Vec<String>, sid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    state.keys.sign(&Claims {
        sub: user.id.clone(),
        role: user.role,
        iss: state.tokens.issuer.clone(),
        aud: state.tokens.audience.clone(),
        iat: now,
        nbf: None,
        exp: now + state.tokens.access_ttl.as_secs() as i64,
        amr,
        sid: Some(sid.to_owned()),
    })
}

fn refresh_expiry(state: &AppState) -> i64 {
    (chrono::Utc::now() + state.tokens.refresh_ttl).timestamp_millis()
}

/// The answer that hands `user` a new access token for `session` and the session's live
/// `refresh_token`.
fn token_response(state: &AppState, user: User, session: Session, refresh_token: String) -> TokenResponse {
    TokenResponse {
        access_token: access_token(state, &user, session.amr, &session.family_id),
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl.as_secs(),
        user,
    }
}

/// Starts a session for `user` and returns its first token pair.
pub async fn sign_in(state: &AppState, user: User, amr: Vec<String>) -> Result<TokenResponse, ApiError> {
    let (refresh_token, refresh_hash) = new_secret_token();
    let session = Session { family_id: uuid::Uuid::now_v7().to_string(), user_id: user.id.clone(), amr };
    state.sessions.start(&session, &refresh_hash, refresh_expiry(state)).await.map_err(ApiError::internal)?;
    Ok(token_response(state, user, session, refresh_token))
}

/// Creates a customer account and signs it in.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 409, description = "The email is taken", content_type = "application/problem+json"),
        (status = 422, description = "A weak password or bad email", content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let email = normalize_email(&body.email);
    let mut v = Validator::new();
    v.check(email.is_some(), "email", "must be an email address");
    if let Err(message) = check_password(&body.password, email.as_deref().unwrap_or_default()) {
        v.add("password", message);
    }
    let name = validated_name(&body.name, "is required", &mut v);
    v.finish()?;
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.expect("validated"),
        name,
        role: Role::Customer,
        created_at: chrono::Utc::now(),
    };
    let account = Account {
        user: user.clone(),
        password_hash: password::hash_async(body.password).await.map_err(ApiError::internal)?,
        mfa_secret: None,
        mfa_confirmed: false,
        mfa_last_step: 0,
    };
    state.users.create(&account).await.map_err(|e| match e {
        StoreError::EmailTaken => ApiError::conflict("an account with this email exists"),
        other => ApiError::internal(other),
    })?;
    tracing::info!(user.id = %user.id, "account registered");
    Ok((StatusCode::CREATED, Json(sign_in(&state, user, vec!["pwd".into()]).await?)))
}

struct Throttle {
    account_key: String,
    address_key: Option<String>,
}

impl Throttle {
    fn new(email: &str, client: ClientIp) -> Self {
        Self {
            account_key: format!("login:account:{}", hash_token(email)),
            address_key: client.0.map(|ip| format!("login:address:{ip}")),
        }
    }

    async fn check(&self, state: &AppState) -> Result<(), ApiError> {
        let limits =
            [(Some(&self.account_key), MAX_ACCOUNT_FAILURES), (self.address_key.as_ref(), MAX_ADDRESS_FAILURES)];
        for (key, limit) in limits {
            let Some(key) = key else { continue };
            let count = state.cache.get(key).await.map_err(ApiError::internal)?;
            let count = count.and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok()).unwrap_or(0);
            if count >= limit {
                let retry = state.cache.ttl(key).await.map_err(ApiError::internal)?.unwrap_or(THROTTLE_WINDOW);
                tracing::warn!(throttle = %key.split(':').nth(1).unwrap_or_default(), "login throttled");
                return Err(ApiError::too_many_requests(retry.as_secs().max(1)));
            }
        }
        Ok(())
    }

    async fn failed(&self, state: &AppState) -> Result<(), ApiError> {
        state.cache.increment(&self.account_key, 1, THROTTLE_WINDOW).await.map_err(ApiError::internal)?;
        if let Some(key) = &self.address_key {
            state.cache.increment(key, 1, THROTTLE_WINDOW).await.map_err(ApiError::internal)?;
        }
        Ok(())
    }

    async fn succeeded(&self, state: &AppState) -> Result<(), ApiError> {
        state.cache.delete(&self.account_key).await.map_err(ApiError::internal)?;
        Ok(())
    }
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("the email or password is not right")
}

/// Signs in with email and password (and a TOTP code where the account has a second factor).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Bad credentials (the same answer whether or not the email exists), or a TOTP code is needed", content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins", content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = normalize_email(&body.email).unwrap_or_else(|| body.email.trim().to_lowercase());
    let throttle = Throttle::new(&email, client);
    throttle.check(&state).await?;
    let account = state.users.by_email(&email).await.map_err(ApiError::internal)?;
    // Verify against a decoy when there is no account, so both answers take as long.
    let stored = account.as_ref().map_or_else(|| password::decoy().to_owned(), |a| a.password_hash.clone());
    let password_ok = password::verify_async(body.password, stored).await.map_err(ApiError::internal)?;
    let Some(account) = account.filter(|_| password_ok) else {
        throttle.failed(&state).await?;
        return Err(bad_credentials());
    };
    let mut amr = vec!["pwd".to_owned()];
    let needs_totp = account.mfa_confirmed || (account.user.role == Role::Admin && account.mfa_secret.is_some());
    if needs_totp {
        let Some(code) = body.totp.as_deref().filter(|c| !c.trim().is_empty()) else {
            return Err(ApiError::custom(StatusCode::UNAUTHORIZED, "mfa-required", "Second factor required")
                .with_detail("this account signs in with a TOTP code: send it as `totp`"));
        };
        if !accept_totp(&state, &account, code).await? {
            throttle.failed(&state).await?;
            return Err(ApiError::custom(StatusCode::UNAUTHORIZED, "mfa-invalid", "Invalid second factor")
                .with_detail("the TOTP code is not valid (or was used already)"));
        }
        amr.push("otp".into());
    }
    throttle.succeeded(&state).await?;
    tracing::info!(user.id = %account.user.id, mfa = amr.len() > 1, "signed in");
    Ok(Json(sign_in(&state, account.user, amr).await?))
}

/// Trades a refresh token for a new pair. The old token stops working; replaying a spent token
/// revokes the session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired, spent or revoked refresh token", content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let refused = || ApiError::unauthorized("the refresh token is not valid");
    let (next_token, next_hash) = new_secret_token();
    let now = chrono::Utc::now().timestamp_millis();
    let rotation = state
        .sessions
        .rotate(&hash_token(&body.refresh_token), &next_hash, refresh_expiry(&state), now)
        .await
        .map_err(ApiError::internal)?;
    let session = match rotation {
        Rotation::Rotated(session) => session,
        Rotation::Reused { family_id } => {
            tracing::warn!(session.id = %family_id, "a spent refresh token was replayed; the session is revoked");
            return Err(refused());
        }
        Rotation::Invalid => return Err(refused()),
    };
    // The account may have gone or changed role since the session began.
    let account = state.users.by_id(&session.user_id).await.map_err(ApiError::internal)?.ok_or_else(refused)?;
    Ok(Json(token_response(&state, account.user, session, next_token)))
}

/// Ends the session of a refresh token (and of the access token presented with it, if any).
/// Access tokens already issued expire on their own within minutes.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The session is revoked")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        // A bearer token that is present must be valid (never silently ignored).
        state.verifier.verify_headers(&headers).await?;
    }
    state.sessions.revoke(&hash_token(&body.refresh_token)).await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
}
