//! Support for tests that need a real server (PostgreSQL, Redis, the moto server): on a laptop
//! without it they skip with a message; under `CI=true` a missing server fails the test.

/// The value of `var` (set by `scripts/dev-deps`), or `None` when a test may skip. Panics when the
/// variable is missing and `CI` is set: a suite is never skipped silently in CI.
pub fn server_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
            panic!("{var} is not set but CI requires this server: run `eval \"$(scripts/dev-deps)\"` first")
        }
        _ => {
            eprintln!(
                "skipping: {var} is not set (run `eval \"$(scripts/dev-deps)\"` to test against the real server)"
            );
            None
        }
    }
}
