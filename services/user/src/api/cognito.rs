//! Sign-in with a Cognito user pool (`POST /v1/auth/cognito`): the mobile app signs its shopper in
//! to the pool (API Gateway's shopper routes require the pool's tokens), then trades the pool's ID
//! token here for the shop's own tokens, which the services accept.
//!
//! The ID token must verify against the pool's published keys, be issued to the configured app
//! client, and carry a verified email. The shop account with that email is signed in, or made on
//! first use (with a random password nobody knows: a password can be set later by a reset). Admins
//! and accounts with a second factor sign in with their password and TOTP code only.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use platform::auth::Role;
use platform::http::{ApiError, Json};
use serde::Deserialize;

use super::auth::TokenResponse;
use crate::AppState;
use crate::domain::{Account, User, new_secret_token, normalize_email, password};
use crate::store::{Claim, StoreError};

/// `POST /v1/auth/cognito`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CognitoSignIn {
    /// The pool's ID token for the shopper.
    pub id_token: String,
}

/// The claims of a Cognito ID token that sign-in reads.
#[derive(Debug, Deserialize)]
struct IdToken {
    /// `id` for an ID token (an access token says `access`).
    token_use: String,
    /// The pool's identity of the user: what an account is bound to.
    #[serde(default)]
    sub: String,
    email: Option<String>,
    /// A boolean, or the string `"true"` in older pools.
    #[serde(default)]
    email_verified: serde_json::Value,
    name: Option<String>,
}

impl IdToken {
    /// Whether the pool verified the email.
    fn email_is_verified(&self) -> bool {
        self.email_verified == serde_json::Value::Bool(true) || self.email_verified == "true"
    }
}

/// Trades a Cognito ID token for the shop's tokens.
#[utoipa::path(post, path = "/v1/auth/cognito", tag = "auth", request_body = CognitoSignIn,
    responses(
        (status = 200, description = "Signed in (the account is made on first use)", body = TokenResponse),
        (status = 401, description = "The ID token does not verify, is not an ID token, or its email is not verified", content_type = "application/problem+json"),
        (status = 403, description = "An admin or an account with a second factor: sign in with the password", content_type = "application/problem+json"),
        (status = 404, description = "Sign-in with Cognito is not enabled", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn cognito_sign_in(
    State(state): State<AppState>,
    Json(body): Json<CognitoSignIn>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Some(pool) = &state.cognito else {
        return Err(ApiError::not_found("sign-in with a Cognito user pool is not enabled"));
    };
    let refused = || ApiError::unauthorized("the ID token is not valid");
    let claims: IdToken = pool.verify_as(&body.id_token).await.map_err(|error| {
        tracing::debug!(%error, "Cognito ID token refused");
        refused()
    })?;
    if claims.token_use != "id" {
        return Err(refused());
    }
    let Some(email) = claims.email.as_deref().and_then(normalize_email).filter(|_| claims.email_is_verified()) else {
        return Err(ApiError::unauthorized("the Cognito account has no verified email"));
    };
    if claims.sub.is_empty() || claims.sub.len() > 128 {
        return Err(refused());
    }
    let sub = claims.sub.as_str();
    // The identity's own account first: bound by `sub`, whatever its email is now.
    let (account, family) = match state.users.by_cognito_sub(sub).await? {
        Some(account) => (account, uuid::Uuid::now_v7()),
        None => match state.users.by_email(&email).await? {
            Some(account) => link(&state, account, sub).await?,
            None => match create(&state, &email, sub, claims.name.as_deref()).await? {
                Some(account) => (account, uuid::Uuid::now_v7()),
                // Made meanwhile by a concurrent sign-in (or a registration): link that one.
                None => {
                    let made = state.users.by_email(&email).await?.ok_or_else(refused)?;
                    link(&state, made, sub).await?
                }
            },
        },
    };
    if account.user.role == Role::Admin || account.mfa_confirmed {
        return Err(ApiError::forbidden("this account signs in with its password and second factor"));
    }
    tracing::Span::current().record("user.id", account.user.id.as_str());
    tracing::info!(user.id = %account.user.id, "signed in with Cognito");
    Ok(Json(super::auth::sign_in_as_of(&state, account.user, vec!["fed".into()], family).await?))
}

/// Binds the Cognito identity `sub` (whose pool verified the email) to the password account with
/// that email, and the account to sign in to with the session id to use. An account whose email
/// nobody proved may have been registered by someone else before its owner came (a pre-hijack):
/// its password, second factor and sessions end in the same write, so only the owner is left.
async fn link(state: &AppState, account: Account, sub: &str) -> Result<(Account, uuid::Uuid), ApiError> {
    if account.user.role == Role::Admin {
        return Err(ApiError::forbidden("this account signs in with its password and second factor"));
    }
    if account.cognito_sub.as_deref().is_some_and(|bound| bound != sub) {
        return Err(ApiError::conflict("the account with this email is bound to another Cognito identity"));
    }
    let replace = match account.email_verified {
        true => None,
        false => {
            let (unknown, _) = new_secret_token();
            Some(password::hash_async(unknown).await.map_err(ApiError::internal)?)
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    let verified = super::verify_email::verified(&account.user.id, &account.user.email);
    let claim = replace.as_deref().map(|password_hash| Claim { password_hash, verified: &verified });
    if !state.users.link_cognito(&account.user.id, sub, claim, now).await? {
        return Err(ApiError::conflict("the account with this email is bound to another Cognito identity"));
    }
    if replace.is_some() {
        tracing::warn!(user.id = %account.user.id,
            "a Cognito identity claimed an account whose email was never verified: its password and sessions ended");
        if let Err(error) = state.sessions.revoke_user(&account.user.id).await {
            // They are over already (the credentials changed); this only tidies.
            tracing::warn!(user.id = %account.user.id, %error, "could not tidy the sessions of a linked account");
        }
    }
    let linked = state.users.by_id(&account.user.id).await?.ok_or_else(super::account_gone)?;
    Ok((linked, super::auth::family_after(now)))
}

/// Makes the account of a first Cognito sign-in; `None` when the email was taken meanwhile.
async fn create(state: &AppState, email: &str, sub: &str, name: Option<&str>) -> Result<Option<Account>, ApiError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(crate::domain::MAX_NAME_CHARS).collect())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.to_owned(),
        name,
        role: Role::Customer,
        created_at: chrono::Utc::now(),
    };
    // A password nobody knows; the shopper may set one with a password reset.
    let (unknown, _) = new_secret_token();
    let account = Account {
        user: user.clone(),
        password_hash: password::hash_async(unknown).await.map_err(ApiError::internal)?,
        mfa_secret: None,
        mfa_confirmed: false,
        mfa_last_step: 0,
        credentials_changed_at: 0,
        // The pool verified it.
        email_verified: true,
        cognito_sub: Some(sub.to_owned()),
    };
    // The pool verified the email: the orders placed as a guest with it become the account's.
    let verified = super::verify_email::verified(&user.id, &user.email);
    match state.users.create(&account, &[verified]).await {
        Ok(()) => {
            tracing::info!(user.id = %user.id, "account made at a first Cognito sign-in");
            Ok(Some(account))
        }
        Err(StoreError::EmailTaken) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/auth/cognito", post(cognito_sign_in))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_verified_email_is_a_boolean_or_the_string_true() {
        let token = |verified: serde_json::Value| -> IdToken {
            serde_json::from_value(json!({"token_use": "id", "email": "a@b.co", "email_verified": verified})).unwrap()
        };
        for (value, verified) in [
            (json!(true), true),
            (json!("true"), true),
            (json!(false), false),
            (json!("false"), false),
            (json!(null), false),
        ] {
            assert_eq!(token(value.clone()).email_is_verified(), verified, "{value}");
        }
        let missing: IdToken = serde_json::from_value(json!({"token_use": "id", "email": "a@b.co"})).unwrap();
        assert!(!missing.email_is_verified(), "a token that does not say is not verified");
    }
}
