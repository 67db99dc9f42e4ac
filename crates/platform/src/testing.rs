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

/// A DynamoDB client for the moto server `scripts/dev-deps` starts (`SHOP_TEST_AWS_ENDPOINT`), with
/// the test credentials; `None` when a test may skip (see [`server_env`]).
pub fn dynamodb_client() -> Option<aws_sdk_dynamodb::Client> {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let endpoint = server_env("SHOP_TEST_AWS_ENDPOINT")?;
    crate::install_crypto_provider();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env("AWS_REGION", "us-east-1")))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            env("AWS_ACCESS_KEY_ID", "test"),
            env("AWS_SECRET_ACCESS_KEY", "test"),
            None,
            None,
            "test",
        ))
        .build();
    Some(aws_sdk_dynamodb::Client::from_conf(config))
}
