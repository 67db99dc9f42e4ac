//! Registration, login, refresh and logout.
//!
//! A login starts a session: a family of refresh tokens. Each refresh spends the presented token
//! and returns a new pair; presenting a spent token again (a stolen token replayed) revokes the
//! whole family. Sign-in attempts are counted before they are checked, per account and address,
//! per address and per account (see `Throttle`), and a failed login says nothing about whether
//! the email exists.

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
use crate::store::{Rotation, Session};

/// Sign-in attempts one address may make at one account in a window (and an account may have from
/// anywhere before its guesses are slowed).
pub const MAX_ACCOUNT_FAILURES: i64 = 5;
/// Failed sign-ins one client address may have in a window, at any accounts.
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
    sign_in_as_of(state, user, amr, uuid::Uuid::now_v7()).await
}

/// Starts a session for `user` whose id `family` (a UUIDv7) was taken before its credentials were
/// read: a session began then, so a password changed since ends it.
pub(crate) async fn sign_in_as_of(
    state: &AppState,
    user: User,
    amr: Vec<String>,
    family: uuid::Uuid,
) -> Result<TokenResponse, ApiError> {
    let (refresh_token, refresh_hash) = new_secret_token();
    let session = Session { family_id: family.to_string(), user_id: user.id.clone(), amr };
    state.sessions.start(&session, &refresh_hash, refresh_expiry(state)).await?;
    Ok(token_response(state, user, session, refresh_token))
}

/// Creates a customer account and signs it in.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 409, description = "The email is taken", content_type = "application/problem+json"),
        (status = 422, description = "A weak password or bad email", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id))]
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
    tracing::Span::current().record("user.id", user.id.as_str());
    let account = Account {
        user: user.clone(),
        password_hash: password::hash_async(body.password).await.map_err(ApiError::internal)?,
        mfa_secret: None,
        mfa_confirmed: false,
        mfa_last_step: 0,
        credentials_changed_at: 0,
        // Until its owner follows the link mailed now, nothing else may claim the account by
        // this email (a Cognito sign-in replaces the password and sessions first).
        email_verified: false,
        cognito_sub: None,
    };
    let verification = super::verify_email::request(&state, &user);
    state.users.create(&account, &[verification]).await?;
    tracing::info!(user.id = %user.id, "account registered");
    Ok((StatusCode::CREATED, Json(sign_in(&state, user, vec!["pwd".into()]).await?)))
}

/// The sign-in throttle. Every attempt is counted *before* its password is checked, atomically in
/// the cache, so guesses sent in parallel cannot pass a limit while the slow checks run:
/// - one address may try one account [`MAX_ACCOUNT_FAILURES`] times a window (then it is refused:
///   the owner at another address is not), and any accounts [`MAX_ADDRESS_FAILURES`] times (a
///   success gives its count back);
/// - an account tried more than [`MAX_ACCOUNT_FAILURES`] times from anywhere is slowed, not locked:
///   one guess may pass every growing delay (2ⁿ s, at most [`MAX_GUESS_DELAY`]), so a botnet guesses
///   slowly and the owner's right password gets through after a short wait. A success resets it.
///
/// Addresses are the viewer's (see `ClientAddress`), IPv6 counted by its /64.
pub(crate) struct Throttle {
    pair_key: String,
    account_key: String,
    gate_key: String,
    address_key: Option<String>,
}

/// Counts one more attempt under `key` (for the window); the count.
async fn count(state: &AppState, key: &str) -> Result<i64, ApiError> {
    Ok(state.cache.increment(key, 1, THROTTLE_WINDOW).await?)
}

/// How long until `key` lets attempts through again.
async fn wait(state: &AppState, key: &str) -> Result<Duration, ApiError> {
    Ok(state.cache.ttl(key).await?.unwrap_or(THROTTLE_WINDOW))
}

/// The longest wait between two guesses at one account.
pub const MAX_GUESS_DELAY: Duration = Duration::from_secs(30);

impl Throttle {
    /// The throttle of attempts in `scope` (`login`, `mfa`) at `subject` (an email, a user id).
    pub(crate) fn new(scope: &str, subject: &str, client: ClientIp) -> Self {
        let account = hash_token(subject);
        let address = client.0.map(|ip| ip.to_string());
        Self {
            pair_key: format!("{scope}:pair:{account}:{}", address.as_deref().unwrap_or("unknown")),
            account_key: format!("{scope}:account:{account}"),
            gate_key: format!("{scope}:gate:{account}"),
            address_key: address.map(|ip| format!("{scope}:address:{ip}")),
        }
    }

    fn refused(&self, why: &str, retry: Duration) -> ApiError {
        tracing::warn!(throttle = why, "sign-in throttled");
        ApiError::too_many_requests(retry.as_secs().max(1))
    }

    /// Counts this attempt, or refuses it.
    pub(crate) async fn admit(&self, state: &AppState) -> Result<(), ApiError> {
        if let Some(key) = &self.address_key
            && count(state, key).await? > MAX_ADDRESS_FAILURES
        {
            return Err(self.refused("address", wait(state, key).await?));
        }
        if count(state, &self.pair_key).await? > MAX_ACCOUNT_FAILURES {
            return Err(self.refused("account from this address", wait(state, &self.pair_key).await?));
        }
        let attempts = count(state, &self.account_key).await?;
        if attempts > MAX_ACCOUNT_FAILURES {
            let doublings = (attempts - MAX_ACCOUNT_FAILURES - 1).clamp(0, 16) as u32;
            let delay = Duration::from_secs(1u64 << doublings).min(MAX_GUESS_DELAY);
            if !state.cache.set_if_absent(&self.gate_key, b"1", Some(delay)).await? {
                return Err(self.refused("account", wait(state, &self.gate_key).await?));
            }
        }
        Ok(())
    }

    /// The attempt succeeded: the account's counts are reset, and the address's gets this one back.
    pub(crate) async fn succeeded(&self, state: &AppState) -> Result<(), ApiError> {
        for key in [&self.pair_key, &self.account_key] {
            state.cache.delete(key).await?;
        }
        if let Some(key) = &self.address_key {
            state.cache.increment(key, -1, THROTTLE_WINDOW).await?;
        }
        Ok(())
    }
}

/// A session id (UUIDv7) that begins just after `ms`: the session of a caller whose credentials
/// changed at `ms` (a password change, a Cognito link) lives on.
pub(crate) fn family_after(ms: i64) -> uuid::Uuid {
    let after = chrono::DateTime::from_timestamp_millis(ms + 1).unwrap_or_default();
    let at = uuid::Timestamp::from_unix(uuid::NoContext, after.timestamp() as u64, after.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(at)
}

/// When a session whose id is the UUIDv7 `family` began (ms since the epoch; 0 for another id).
pub(crate) fn started_ms(family: &uuid::Uuid) -> i64 {
    family
        .get_timestamp()
        .map(|ts| ts.to_unix())
        .map(|(secs, nanos)| secs as i64 * 1000 + i64::from(nanos / 1_000_000))
        .unwrap_or(0)
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
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = normalize_email(&body.email).unwrap_or_else(|| body.email.trim().to_lowercase());
    let throttle = Throttle::new("login", &email, client);
    throttle.admit(&state).await?;
    // The session begins before the password is read: if the password changes while this login
    // checks the old one, the session is over at once.
    let family = uuid::Uuid::now_v7();
    let account = state.users.by_email(&email).await?;
    // Verify against a decoy when there is no account, so both answers take as long.
    let stored = account.as_ref().map_or_else(|| password::decoy().to_owned(), |a| a.password_hash.clone());
    let password_ok = password::verify_async(body.password, stored).await.map_err(ApiError::internal)?;
    let Some(account) = account.filter(|_| password_ok) else {
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
            return Err(ApiError::custom(StatusCode::UNAUTHORIZED, "mfa-invalid", "Invalid second factor")
                .with_detail("the TOTP code is not valid (or was used already)"));
        }
        amr.push("otp".into());
    }
    throttle.succeeded(&state).await?;
    // A password changed while this login checked the old one: no session from it.
    let now = state.users.by_id(&account.user.id).await?;
    if now.is_none_or(|now| now.credentials_changed_at >= started_ms(&family)) {
        return Err(bad_credentials());
    }
    tracing::Span::current().record("user.id", account.user.id.as_str());
    tracing::info!(user.id = %account.user.id, mfa = amr.len() > 1, "signed in");
    Ok(Json(sign_in_as_of(&state, account.user, amr, family).await?))
}

/// Trades a refresh token for a new pair. The old token stops working: presented again within the
/// grace window (`SHOP_REFRESH_GRACE_MS`, 10 s) it answers the same pair again (two tabs, a retry
/// after a lost answer); later it is a replay and revokes the session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired, spent or revoked refresh token", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let refused = || ApiError::unauthorized("the refresh token is not valid");
    // The successor is derived from the token, so a second presentation within the grace window
    // (another tab, a retry after a lost answer) is answered with the same pair.
    let next_token = state.keys.successor(&body.refresh_token);
    let now = chrono::Utc::now().timestamp_millis();
    let grace = state.tokens.refresh_grace.as_millis() as i64;
    let rotation = state
        .sessions
        .rotate(&hash_token(&body.refresh_token), &hash_token(&next_token), refresh_expiry(&state), now, grace)
        .await?;
    let session = match rotation {
        Rotation::Rotated(session) => session,
        Rotation::Reused { family_id } => {
            tracing::warn!(session.id = %family_id, "a spent refresh token was replayed; the session is revoked");
            return Err(refused());
        }
        Rotation::Invalid => return Err(refused()),
    };
    tracing::Span::current().record("user.id", session.user_id.as_str());
    // The account may have gone or changed role since the session began, or its password changed
    // (a reset, a change): then every session that began before is over.
    let account = state.users.by_id(&session.user_id).await?.ok_or_else(refused)?;
    let started = uuid::Uuid::parse_str(&session.family_id).map(|id| started_ms(&id)).unwrap_or(0);
    if account.credentials_changed_at >= started {
        state.sessions.revoke(&hash_token(&next_token)).await?;
        tracing::info!(session.id = %session.family_id, "a session from before a password change ended");
        return Err(refused());
    }
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
    state.sessions.revoke(&hash_token(&body.refresh_token)).await?;
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
