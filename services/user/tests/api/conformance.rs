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

use secrecy::SecretString;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

/// A name no other test uses: `prefix` and a fresh UUID.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A fresh schema of the test database, and a pool whose connections use it.
pub struct PgSchema {
    name: String,
    /// The test database's URL with the schema as `search_path`.
    pub url: String,
    /// Connections whose `search_path` is the schema.
    pub pool: PgPool,
    admin: PgPool,
}

impl PgSchema {
    /// Creates the schema, or `None` (skip) when there is no test database.
    pub async fn create() -> Option<Self> {
        let url = platform::testing::server_env("SHOP_TEST_DATABASE_URL")?;
        platform::install_crypto_provider();
        let admin = platform::postgres::connect(&SecretString::from(url.clone()), 1).await.unwrap();
        let name = unique("t_");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&admin).await.unwrap();
        let mut scoped = url::Url::parse(&url).unwrap();
        scoped.query_pairs_mut().append_pair("options", &format!("-c search_path={name}"));
        let url = scoped.to_string();
        let pool = platform::postgres::connect(&SecretString::from(url.clone()), 5).await.unwrap();
        Some(Self { name, url, pool, admin })
    }

    /// Closes the pool and drops the schema with everything in it.
    pub async fn drop(&self) {
        self.pool.close().await;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&self.admin).await.unwrap();
        self.admin.close().await;
    }
}
