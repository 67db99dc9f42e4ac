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

/// A fresh schema of the test database (`SHOP_TEST_DATABASE_URL`), and a pool whose connections
/// use it, so tests run side by side without seeing each other's tables.
pub struct PgSchema {
    name: String,
    /// The test database's URL with the schema as `search_path`.
    pub url: String,
    /// Connections whose `search_path` is the schema.
    pub pool: sqlx::PgPool,
    admin: sqlx::PgPool,
}

impl PgSchema {
    /// Creates the schema, or `None` (skip) when there is no test database (see [`server_env`]).
    pub async fn create() -> Option<Self> {
        use secrecy::SecretString;
        let url = server_env("SHOP_TEST_DATABASE_URL")?;
        crate::install_crypto_provider();
        let admin = crate::postgres::connect(&SecretString::from(url.clone()), 1).await.expect("the test database");
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await
            .expect("a test schema");
        let mut scoped = url::Url::parse(&url).expect("a database URL");
        scoped.query_pairs_mut().append_pair("options", &format!("-c search_path={name}"));
        let url = scoped.to_string();
        let pool = crate::postgres::connect(&SecretString::from(url.clone()), 5).await.expect("the test schema");
        Some(Self { name, url, pool, admin })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool of the whole database (not scoped to the schema).
    pub fn admin(&self) -> &sqlx::PgPool {
        &self.admin
    }

    /// Closes the pool and drops the schema with everything in it.
    pub async fn drop(&self) {
        self.pool.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&self.admin)
            .await
            .expect("the test schema drops");
        self.admin.close().await;
    }
}

/// The log lines written on this thread while it lives, as production writes them
/// ([`crate::telemetry::json_layer`]): for tests that assert what a line carries. The capture ends
/// when it is dropped.
pub struct CapturedLogs {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

/// Captures the log lines that `filter` (`info`, `shop_payment=debug`) lets through, written on
/// this thread (a `#[tokio::test]` runs every task on it) until the capture is dropped.
pub fn capture_logs(filter: &str) -> CapturedLogs {
    use tracing_subscriber::layer::SubscriberExt;

    let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(filter))
        .with(crate::telemetry::json_layer(move || LogSink(sink.clone())));
    CapturedLogs { buffer, _guard: tracing::subscriber::set_default(subscriber) }
}

impl CapturedLogs {
    /// Every line written so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.buffer.lock().expect("the log buffer").clone();
        String::from_utf8(bytes)
            .expect("log lines are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a log line is a JSON object"))
            .collect()
    }

    /// The lines whose message is `message`.
    pub fn with_message(&self, message: &str) -> Vec<serde_json::Value> {
        self.lines().into_iter().filter(|line| line["message"] == message).collect()
    }
}

/// The value of `field` on a log `line`: the line's own, else that of the innermost span it was
/// written in that has it.
pub fn log_field<'a>(line: &'a serde_json::Value, field: &str) -> Option<&'a serde_json::Value> {
    line.get(field).or_else(|| {
        line["spans"].as_array()?.iter().rev().find_map(|span| span.get(field).filter(|v| v.as_str() != Some("")))
    })
}

struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
