//! Account rules, free of I/O: emails, password strength, addresses, secret tokens.

pub mod password;
pub mod totp;

use platform::auth::Role;
use platform::http::Validator;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When the account was made (RFC 3339).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A stored account: the user and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret (base32), once enrolment has begun.
    pub mfa_secret: Option<String>,
    /// Whether a code from the secret has been presented.
    pub mfa_confirmed: bool,
    /// The last TOTP time step accepted (a code is never accepted twice).
    pub mfa_last_step: i64,
    /// When the password last changed (ms since the epoch; 0: never): sessions that began before
    /// are over.
    pub credentials_changed_at: i64,
    /// Whether the email was shown to be the account owner's (the verification link, or a pool
    /// that verified it): only then may another sign-in method claim the account by its email.
    pub email_verified: bool,
    /// The Cognito identity (`sub`) bound to the account, once one signed in to it.
    pub cognito_sub: Option<String>,
}

pub use platform::address::AddressInput;

/// A stored address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Address {
    /// Stable id.
    pub id: String,
    /// The address.
    #[serde(flatten)]
    pub address: AddressInput,
}

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A display name, trimmed; records in `v` under `name` when it is empty (with `if_empty`: a
/// required field "is required", an optional one "must not be empty") or longer than
/// [`MAX_NAME_CHARS`].
pub fn validated_name(name: &str, if_empty: &str, v: &mut Validator) -> String {
    let name = name.trim().to_owned();
    v.check(!name.is_empty(), "name", if_empty);
    v.check(name.chars().count() <= MAX_NAME_CHARS, "name", "must be at most 100 characters");
    name
}

/// The normal form of an email address (trimmed, lower-case), or `None` when it is not one.
pub use platform::email::normalize as normalize_email;

/// Passwords everyone tries first.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "123456789",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "qwerty1234",
    "iloveyou12",
    "letmein123",
    "welcome123",
    "admin12345",
    "changeme12",
    "abcdefghij",
    "passw0rd12",
];

/// Whether `password` is strong enough: 10–128 characters, not a well-known password, not a single
/// repeated character, not the email.
pub fn check_password(password: &str, email: &str) -> Result<(), &'static str> {
    let length = password.chars().count();
    if length < 10 {
        return Err("must be at least 10 characters");
    }
    if length > 128 {
        return Err("must be at most 128 characters");
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("is too common");
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("must not repeat one character");
    }
    if lower == email.to_lowercase() || email.split('@').next().is_some_and(|local| lower == local) {
        return Err("must not be the email address");
    }
    Ok(())
}

/// A new single-use secret token (256 random bits, URL-safe) and the hash that is stored instead.
pub fn new_secret_token() -> (String, String) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a secret token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").as_deref(), Some("ada@example.com"));
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "ada@example..com", "a@b@c.d"]
        {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password("correct horse battery", "ada@example.com").is_ok());
        for weak in ["short", "password123", "aaaaaaaaaaaa", "adalovelace", "AdaLovelace@Example.com"] {
            assert!(check_password(weak, "adalovelace@example.com").is_err(), "{weak}");
        }
        assert!(check_password("ada@example.com", "ada@example.com").is_err());
        assert!(check_password(&"ab".repeat(65), "x@y.z").is_err());
    }

    #[test]
    fn addresses_are_normalised_and_checked() {
        let mut v = Validator::new();
        let address = AddressInput {
            name: " Ada ".into(),
            line1: "1 Main St".into(),
            line2: Some("  ".into()),
            city: "Springfield".into(),
            region: None,
            postal_code: "12345".into(),
            country: "us".into(),
        }
        .validated(&mut v);
        assert!(v.is_empty());
        assert_eq!(address.name, "Ada");
        assert_eq!(address.line2, None);
        assert_eq!(address.country, "US");
        let mut v = Validator::new();
        AddressInput { name: String::new(), country: "USA".into(), ..address }.validated(&mut v);
        assert!(v.finish().is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_limited_to_100_characters() {
        let mut v = Validator::new();
        assert_eq!(validated_name("  Ada Lovelace ", "is required", &mut v), "Ada Lovelace");
        assert_eq!(validated_name(&"é".repeat(MAX_NAME_CHARS), "is required", &mut v).chars().count(), 100);
        assert!(v.is_empty());
        for bad in ["   ", &"a".repeat(MAX_NAME_CHARS + 1)] {
            let mut v = Validator::new();
            validated_name(bad, "is required", &mut v);
            assert!(!v.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn a_secret_token_is_stored_only_as_its_hash() {
        let (token, hash) = new_secret_token();
        assert_eq!(token.len(), 43);
        assert_eq!(hash, hash_token(&token));
        assert_ne!(hash, token);
    }
}
