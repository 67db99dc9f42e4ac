//! Conformance suites of the user service stores.
//!
//! Each port has one suite, written once as async functions over a fixture that wraps the port, and
//! instantiated for every adapter by [`instantiate!`]: a test reads
//! `conformance::sessions::redis::presenting_a_spent_token_revokes_the_whole_family`.
//!
//! - [`users`]: `UserStore` on SQLite (a temporary file) and on PostgreSQL (a fresh schema per test).
//! - [`sessions`]: `SessionStore` on SQLite and on Redis (a fresh key prefix per test).
//!
//! Adapters on a real server find it through `SHOP_TEST_DATABASE_URL` and `SHOP_TEST_REDIS_URL`
//! (`eval "$(scripts/dev-deps env)"`); without them a test skips on a laptop and fails under `CI=true`
//! ([`platform::testing::server_env`]). Every test makes its own schema or key prefix (named by a
//! fresh UUID) and removes it afterwards, even when it fails, so the tests run concurrently against
//! shared servers.

/// Instantiates suite tests for one adapter: for each `$test`, a `#[tokio::test]` that opens the
/// adapter with `$fixture()` (skipping when it returns `None`), runs the suite's `super::$test` on
/// it in a task of its own, then cleans the fixture up with its `finish` method before passing on
/// the test's panic, if any. Used inside a per-adapter module that has `use super::*` (here and by
/// the HTTP suite).
macro_rules! instantiate {
    ($fixture:ident: $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(fixture) = $fixture().await else { return };
                let fixture = std::sync::Arc::new(fixture);
                let run = tokio::spawn({
                    let fixture = fixture.clone();
                    async move { super::$test(&fixture).await }
                })
                .await;
                fixture.finish().await;
                if let Err(failure) = run {
                    std::panic::resume_unwind(failure.into_panic());
                }
            }
        )+
    };
}

mod sessions;
mod users;

/// A name no other test uses: `prefix` and a fresh UUID.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub use platform::testing::PgSchema;
