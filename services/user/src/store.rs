//! The user service's storage ports — accounts ([`UserStore`]) and sessions ([`SessionStore`]) —
//! and their adapters.

pub mod postgres;
pub mod redis;
pub mod sqlite;

use async_trait::async_trait;
use platform::events::Event;

use crate::domain::{Account, Address, User};

/// A failure of a user-service store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An account with this email exists.
    #[error("an account with this email exists")]
    EmailTaken,
    /// The store itself failed.
    #[error("user store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for StoreError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::EmailTaken => ErrorKind::Conflict,
            Self::Backend(error) => platform::error::backend_kind(error.as_ref()),
        }
    }
}

impl StoreError {
    /// Wraps a backend failure.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// Builds an event for an account id, inside the store's transaction.
pub type EventFactory = Box<dyn FnOnce(&str) -> Event + Send + 'static>;

/// A password-reset request to record.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    /// The normalised email it was asked for.
    pub email: String,
    /// SHA-256 of the token mailed to the user.
    pub token_hash: String,
    /// When the token stops working (Unix ms).
    pub expires_at: i64,
}

/// Accounts and their credentials, addresses and reset tokens.
/// What a Cognito identity's first link to an account whose email nobody proved writes besides the
/// link ([`UserStore::link_cognito`]).
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The password's new hash (of one nobody knows).
    pub password_hash: &'a str,
    /// `user.email_verified.v1`: the pool verified the email.
    pub verified: &'a Event,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new account with `events` (its outbox, one transaction); [`StoreError::EmailTaken`]
    /// when its email is (or its Cognito identity is bound already).
    async fn create(&self, account: &Account, events: &[platform::events::Event]) -> Result<(), StoreError>;
    /// The account the Cognito identity `sub` is bound to.
    async fn by_cognito_sub(&self, sub: &str) -> Result<Option<Account>, StoreError>;
    /// Marks the email of `user_id` verified, if it is still `email`, with `event` (what says so)
    /// in the same transaction; `false` otherwise (nothing written).
    async fn verify_email(
        &self,
        user_id: &str,
        email: &str,
        event: &platform::events::Event,
    ) -> Result<bool, StoreError>;
    /// Writes `event` (a new verification email) to the outbox if `user_id` exists and its email is
    /// not verified, in one transaction; `false` otherwise (nothing written).
    async fn request_verification(&self, user_id: &str, event: &platform::events::Event) -> Result<bool, StoreError>;
    /// Binds the Cognito identity `sub` to `user_id` (unless another is bound) and marks its email
    /// verified; with a `claim` (the email was not verified), in the same transaction the password
    /// becomes the claim's hash (one nobody knows), the second factor is dropped, every session ends
    /// (credentials changed at `now_ms`) — what someone who registered the email before its owner
    /// set up goes — and the claim's event (the email is verified now) is written to the outbox.
    /// `false` when another identity is bound or there is no such user.
    async fn link_cognito(
        &self,
        user_id: &str,
        sub: &str,
        claim: Option<Claim<'_>>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// The account with this (normalised) email.
    async fn by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;
    /// The account with this id.
    async fn by_id(&self, id: &str) -> Result<Option<Account>, StoreError>;
    /// Renames a user; the updated user, or `None` when there is no such user.
    async fn rename(&self, id: &str, name: &str) -> Result<Option<User>, StoreError>;
    /// Starts TOTP enrolment with `secret` (unconfirmed), replacing an unconfirmed one.
    async fn set_mfa_secret(&self, id: &str, secret: &str) -> Result<(), StoreError>;
    /// Accepts TOTP step `step` for the user (confirming enrolment) if it is later than the last
    /// accepted one; `false` when the step was used already (a replayed code).
    async fn use_mfa_step(&self, id: &str, step: i64) -> Result<bool, StoreError>;
    /// The user's addresses, oldest first.
    async fn addresses(&self, user_id: &str) -> Result<Vec<Address>, StoreError>;
    /// Adds an address.
    async fn add_address(&self, user_id: &str, address: &Address) -> Result<(), StoreError>;
    /// Deletes the user's address `id`; `false` when the user has no such address.
    async fn delete_address(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Records a reset token for the account with `request.email`, and the event `make_event` builds
    /// for that account's id, in one transaction. `false` (and nothing written) when no account has
    /// that email.
    async fn request_password_reset(&self, request: ResetRequest, make_event: EventFactory)
    -> Result<bool, StoreError>;
    /// Spends the reset token with `token_hash` (unused, unexpired at `now_ms`) and sets the
    /// account's password hash, marking the credentials changed at `now_ms` (which ends every
    /// session that began before), in one transaction; the account's id, or `None` for a bad
    /// token.
    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Users whose email or name contains `query` (case-insensitive), ordered by id, after the id
    /// `after`, at most `limit`.
    async fn search(&self, query: &str, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError>;
    /// Sets the password hash of `user_id` to `new_hash` if it is still `current_hash` (the one the
    /// caller checked the current password against), marking the credentials changed at `now_ms`
    /// (which ends every session that began before) and spending outstanding reset tokens, in
    /// one transaction; `false` when the hash changed meanwhile or there is no such user.
    async fn change_password(
        &self,
        user_id: &str,
        current_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// A session: one login's refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The family id (the `sid` claim of its access tokens).
    pub family_id: String,
    /// The user.
    pub user_id: String,
    /// How the user authenticated at login.
    pub amr: Vec<String>,
}

impl Session {
    /// [`amr`](Self::amr) as the session stores keep it: the methods separated by spaces.
    pub fn amr_text(&self) -> String {
        self.amr.join(" ")
    }

    /// The methods of a stored [`amr_text`](Self::amr_text).
    pub fn parse_amr(text: &str) -> Vec<String> {
        text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is spent now, and its successor is live.
    Rotated(Session),
    /// The token was spent before: someone replayed it, so the whole family is revoked now.
    Reused {
        /// The revoked family.
        family_id: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// Refresh-token families (Redis in the local stack and AWS, SQLite in the embedded mode). Only
/// SHA-256 hashes of refresh tokens are stored.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts `session` with its first token, expiring at `expires_at` (Unix ms).
    async fn start(&self, session: &Session, token_hash: &str, expires_at: i64) -> Result<(), StoreError>;
    /// Spends the token `presented` and makes `next` its live successor (expiring at
    /// `next_expires_at`), atomically: of two concurrent presentations only one rotates. A token
    /// spent less than `grace_ms` ago whose live successor is `next` answers `Rotated` again
    /// (the caller derives `next` from `presented`, so a second tab or a retry gets the same
    /// pair); spent any longer, or with another successor, it is a replay and revokes the family.
    async fn rotate(
        &self,
        presented: &str,
        next: &str,
        next_expires_at: i64,
        now: i64,
        grace_ms: i64,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the family of the token `presented` (logout); nothing when it is unknown.
    async fn revoke(&self, presented: &str) -> Result<(), StoreError>;
    /// Revokes every session of a user (after a password reset).
    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError>;
}
