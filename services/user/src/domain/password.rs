//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane — OWASP's
//! recommendation), each hash with its own random salt, stored as a PHC string.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The PHC string of `password`.
pub fn hash(password: &str) -> String {
    Argon2::default().hash_password(password.as_bytes()).expect("argon2 hashes any password").to_string()
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// [`hash`] on the blocking pool: argon2 takes tens of milliseconds of CPU, too long for an async
/// worker. Fails only when the hashing task panicked or was cancelled.
pub async fn hash_async(password: String) -> Result<String, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || hash(&password)).await
}

/// [`verify`] on the blocking pool (see [`hash_async`]).
pub async fn verify_async(password: String, stored: String) -> Result<bool, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || verify(&password, &stored)).await
}

/// A hash to verify against when the account does not exist, so a login takes as long either way.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password that never matches"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_salted_hash_only() {
        let a = hash("correct horse battery");
        let b = hash("correct horse battery");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &a));
        assert!(!verify("wrong horse battery", &a));
        assert!(!verify("anything", "not a hash"));
    }
}
