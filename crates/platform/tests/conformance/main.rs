//! Conformance suites of the platform's ports.
//!
//! Each port has one suite, written once as generic async functions over the port, and instantiated
//! for every adapter by a macro (in the manner of quickwit's `metastore_test_suite!`): a test reads
//! `bus::sqs::a_nacked_message_with_no_delay_is_visible_again_at_once`. Adapters on a real server
//! (PostgreSQL, Redis, SQS and S3 on the moto server) find it through the `SHOP_TEST_*` variables that
//! `eval "$(scripts/dev-deps)"` exports; without them a test skips on a laptop and fails under
//! `CI=true` ([`platform::testing::server_env`]).
//!
//! Every test makes its own queues, key prefixes, buckets and schemas (named by a fresh UUID), so
//! the tests run concurrently against shared servers.

/// Instantiates suite tests for one adapter: for each `$test`, a `#[tokio::test]` that opens the
/// adapter with `$fixture()` (skipping when it returns `None`) and runs the generic
/// `super::$test(&fixture)`. Used inside a per-adapter module that has `use super::*`.
macro_rules! instantiate {
    ($fixture:ident: $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let Some(fixture) = $fixture().await else { return };
                super::$test(&fixture).await;
            }
        )+
    };
}

mod bus;
mod cache;
mod objects;
mod outbox;
mod postgres;

use std::future::Future;
use std::time::{Duration, Instant};

/// A name no other test uses: `prefix` and a fresh UUID.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Polls `probe` until it yields a value or `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The moto server's endpoint (SQS and S3), or `None` to skip.
pub fn moto_endpoint() -> Option<String> {
    let endpoint = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT")?;
    platform::install_crypto_provider();
    Some(endpoint)
}
