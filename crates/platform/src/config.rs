//! Layered configuration: built-in defaults (the embedded mode) ← an optional TOML file named by
//! `SHOP_CONFIG` ← `SHOP_*` environment variables. Everything is validated once, at start; backend
//! choices become enums, and a bad value stops the process with a message naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The prefix of every environment variable the platform reads.
pub const ENV_PREFIX: &str = "SHOP_";

/// Where the document stores (catalog, stock, carts, orders) keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite databases under the data dir (embedded mode).
    Sqlite,
    /// Amazon DynamoDB (or its API on moto/LocalStack).
    Dynamodb,
}

/// The product search engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchBackend {
    /// A Tantivy index under the data dir (embedded mode).
    Tantivy,
    /// An OpenSearch domain.
    Opensearch,
}

/// Who takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProvider {
    /// The simulated provider (honours Stripe's test payment methods; embedded mode, tests).
    Simulated,
    /// Stripe.
    Stripe,
}

/// Where events travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// The durable SQLite queue under the data dir (embedded mode).
    Sqlite,
    /// Amazon SQS (or its API on moto/LocalStack), one queue per consumer with a dead-letter queue.
    Sqs,
}

/// Where objects (images, shipping labels) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectBackend {
    /// A folder under the data dir.
    Local,
    /// An S3 bucket.
    S3,
}

/// The `From` of emails when `SHOP_MAIL_FROM` is unset.
pub const DEFAULT_MAIL_FROM: &str = "Shop <no-reply@shop.local>";

/// Where the user service's emails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailBackend {
    /// `.eml` files in the data dir's `mail` folder, for a developer to open (embedded mode).
    Folder,
    /// Amazon SES's v2 API (its raw `SendEmail`).
    Ses,
}

/// Which cache holds sessions, hot carts and hot reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// In the process's memory.
    Memory,
    /// Redis (ElastiCache on AWS).
    Redis,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object a line (what CloudWatch Logs and the EMF parser read).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// The whole configuration of a service process (or of `shop up`, which runs all five).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`SHOP_BIND`).
    pub bind: IpAddr,
    /// Port to listen on (`SHOP_PORT`); 0 picks a free one.
    pub port: u16,
    /// Base URL clients use to reach this process (`SHOP_PUBLIC_URL`); defaults to
    /// `http://localhost:{port}`. Signed local upload URLs and local file URLs are built on it.
    pub public_url: Option<Url>,
    /// Where the embedded stores, queue, index and files live (`SHOP_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Log format (`SHOP_LOG_FORMAT`: json | pretty).
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (`SHOP_LOG`).
    pub log: String,
    /// Whether business metrics are written to stdout as CloudWatch Embedded Metric Format records
    /// (`SHOP_METRICS_EMF`; on in the ECS tasks, where the log driver turns them into metrics).
    pub metrics_emf: bool,

    /// Largest accepted request body in bytes (`SHOP_BODY_LIMIT_BYTES`).
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408 (`SHOP_REQUEST_TIMEOUT_MS`).
    pub request_timeout_ms: u64,
    /// Origins allowed by CORS, comma-separated, or `*` (`SHOP_CORS_ORIGINS`); empty allows none.
    pub cors_origins: String,
    /// Whether per-client rate limiting is on (`SHOP_RATE_LIMIT_ENABLED`); load tests turn it off.
    pub rate_limit_enabled: bool,
    /// Sustained requests per second allowed to one client (`SHOP_RATE_LIMIT_PER_SECOND`).
    pub rate_limit_per_second: u32,
    /// Burst a client may spend at once (`SHOP_RATE_LIMIT_BURST`).
    pub rate_limit_burst: u32,
    /// Proxies in front of the service that append to `X-Forwarded-For` (`SHOP_TRUSTED_PROXY_HOPS`);
    /// 0 limits by the peer address.
    pub trusted_proxy_hops: u8,
    /// A header a trusted edge sets to the viewer's own address (`SHOP_CLIENT_ADDRESS_HEADER`, e.g.
    /// `cloudfront-viewer-address`), preferred over `X-Forwarded-For` when a request carries it.
    pub client_address_header: Option<String>,
    /// The secret trusted edges (CloudFront, API Gateway) send in `X-Shop-Edge` (`SHOP_EDGE_SECRET`).
    /// When set, only a request carrying it is read past `trusted_proxy_hops` proxies and by the
    /// client-address header: any other came to the load balancer directly, which is the one proxy
    /// it passed, so what it wrote in `X-Forwarded-For` is not believed.
    pub edge_secret: Option<SecretString>,
    /// How long shutdown waits for in-flight requests and consumers (`SHOP_SHUTDOWN_GRACE_MS`).
    pub shutdown_grace_ms: u64,

    /// Event bus backend (`SHOP_EVENT_BUS`: sqlite | sqs).
    pub event_bus: BusBackend,
    /// Prefix of every SQS queue name (`SHOP_SQS_QUEUE_PREFIX`).
    pub sqs_queue_prefix: String,
    /// Long-poll wait of an SQS receive in seconds (`SHOP_SQS_WAIT_SECONDS`, 0–20).
    pub sqs_wait_seconds: u8,

    /// AWS region (`SHOP_AWS_REGION`).
    pub aws_region: String,
    /// Endpoint for every AWS API (`SHOP_AWS_ENDPOINT_URL`): the moto server or LocalStack locally.
    pub aws_endpoint_url: Option<Url>,

    /// Object store backend (`SHOP_OBJECT_STORE`: local | s3).
    pub object_store: ObjectBackend,
    /// The bucket when the object store is S3 (`SHOP_S3_BUCKET`).
    pub s3_bucket: Option<String>,
    /// Public base URL of stored objects (`SHOP_CDN_BASE_URL`): CloudFront on AWS.
    pub cdn_base_url: Option<Url>,
    /// Key that signs local upload URLs (`SHOP_URL_SIGNING_KEY`); generated and kept in the data dir
    /// when unset.
    pub url_signing_key: Option<SecretString>,

    /// Cache backend (`SHOP_CACHE`: memory | redis).
    pub cache: CacheBackend,
    /// Redis URL when the cache is Redis (`SHOP_REDIS_URL`).
    pub redis_url: Option<SecretString>,
    /// Entries the in-process cache holds at most (`SHOP_CACHE_MAX_ENTRIES`).
    pub cache_max_entries: usize,

    /// Document store backend (`SHOP_STORE_BACKEND`: sqlite | dynamodb).
    pub store_backend: StoreBackend,
    /// Prefix of every DynamoDB table name (`SHOP_DYNAMODB_TABLE_PREFIX`).
    pub dynamodb_table_prefix: String,
    /// Search backend (`SHOP_SEARCH_BACKEND`: tantivy | opensearch).
    pub search_backend: SearchBackend,
    /// OpenSearch endpoint when the search backend is OpenSearch (`SHOP_OPENSEARCH_URL`).
    pub opensearch_url: Option<Url>,
    /// The OpenSearch index of products (`SHOP_OPENSEARCH_INDEX`).
    pub opensearch_index: String,
    /// Largest body of a bulk request (`SHOP_BULK_BODY_LIMIT_BYTES`): NDJSON imports.
    pub bulk_body_limit_bytes: usize,
    /// Search result pages kept per index generation (`SHOP_SEARCH_CACHE_PAGES`; 0 turns the page
    /// cache off).
    pub search_cache_pages: usize,
    /// Largest product image an admin may upload, in bytes (`SHOP_IMAGE_MAX_BYTES`).
    pub image_max_bytes: u64,
    /// How long a stock reservation holds when the saga's command names no time
    /// (`SHOP_RESERVATION_TTL_SECS`).
    pub reservation_ttl_secs: u64,
    /// How often the inventory looks for expired reservations (and the order service for overdue
    /// saga steps), in milliseconds (`SHOP_RESERVATION_SWEEP_MS`).
    pub reservation_sweep_ms: u64,
    /// How long the checkout saga waits for the stock reservation, in milliseconds; the payment
    /// gets twice as long and the capture four times (`SHOP_SAGA_STEP_TIMEOUT_MS`).
    pub saga_step_timeout_ms: u64,
    /// After how long without a change a cart with lines is reported abandoned, in seconds
    /// (`SHOP_CART_ABANDON_SECS`).
    pub cart_abandon_secs: u64,

    /// Where emails are delivered (`SHOP_MAIL_SINK`: folder | ses).
    pub mail_sink: MailBackend,
    /// The `From` of every email (`SHOP_MAIL_FROM`); with SES, an identity verified there.
    pub mail_from: String,

    /// PostgreSQL URL for the services that keep their data there on AWS (`SHOP_DATABASE_URL`);
    /// unset means SQLite under the data dir.
    pub database_url: Option<SecretString>,

    /// The `iss` of access tokens (`SHOP_JWT_ISSUER`); a Cognito user pool's URL to accept its tokens.
    pub jwt_issuer: String,
    /// The `aud` of access tokens (`SHOP_JWT_AUDIENCE`).
    pub jwt_audience: String,
    /// Where the access-token keys are published (`SHOP_JWKS_URL`); unset means the user service's
    /// (`SHOP_USER_URL` + `/.well-known/jwks.json`), or in-process in the embedded mode.
    pub jwks_url: Option<Url>,
    /// The user service's signing keys (`SHOP_JWT_PRIVATE_KEYS`): comma-separated base64 PKCS#8
    /// Ed25519 keys, the last one signing, the others still published for tokens they signed. Unset:
    /// keys are made and kept under the data dir.
    pub jwt_private_keys: Option<SecretString>,
    /// Lifetime of an access token in seconds (`SHOP_ACCESS_TOKEN_TTL_SECS`).
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token in seconds (`SHOP_REFRESH_TOKEN_TTL_SECS`).
    pub refresh_token_ttl_secs: u64,
    /// How long a spent refresh token still answers with its successor (`SHOP_REFRESH_GRACE_MS`):
    /// two tabs refreshing at once, a retry after a lost answer. Later, it is a replay.
    pub refresh_grace_ms: u64,

    /// The Cognito user pool whose shoppers may sign in with its ID tokens (`SHOP_COGNITO_ISSUER`:
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`); unset turns that sign-in off.
    pub cognito_issuer: Option<Url>,
    /// The pool's app client the ID tokens are issued to (`SHOP_COGNITO_CLIENT_ID`, their `aud`).
    pub cognito_client_id: Option<String>,

    /// The signing secret of the Stripe webhook endpoint (`SHOP_STRIPE_WEBHOOK_SECRET`); without it
    /// every webhook is refused.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Who takes the payments (`SHOP_PAYMENT_PROVIDER`: simulated | stripe).
    pub payment_provider: PaymentProvider,
    /// Stripe's secret API key (`SHOP_STRIPE_SECRET_KEY`), required with the Stripe provider.
    pub stripe_secret_key: Option<SecretString>,
    /// Stripe's API (`SHOP_STRIPE_API_BASE`).
    pub stripe_api_base: Url,
    /// How long one call to the payment provider may take, in milliseconds
    /// (`SHOP_PAYMENT_TIMEOUT_MS`).
    pub payment_timeout_ms: u64,
    /// The simulated provider's latency per call, in milliseconds (`SHOP_SIMULATED_LATENCY_MS`).
    pub simulated_latency_ms: u64,
    /// The share of the simulated provider's calls that fail as if it were down, 0 to 1
    /// (`SHOP_SIMULATED_FAILURE_RATE`).
    pub simulated_failure_rate: f64,

    /// Base URLs of the other services (`SHOP_USER_URL`, …); unset means in-process (embedded).
    pub user_url: Option<Url>,
    /// See `user_url`.
    pub product_url: Option<Url>,
    /// See `user_url`.
    pub order_url: Option<Url>,
    /// See `user_url`.
    pub payment_url: Option<Url>,
    /// See `user_url`.
    pub inventory_url: Option<Url>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            public_url: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Json,
            log: "info".into(),
            metrics_emf: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            cors_origins: String::new(),
            rate_limit_enabled: true,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            trusted_proxy_hops: 0,
            client_address_header: None,
            edge_secret: None,
            shutdown_grace_ms: 20_000,
            event_bus: BusBackend::Sqlite,
            sqs_queue_prefix: "shop-".into(),
            sqs_wait_seconds: 10,
            aws_region: "us-east-1".into(),
            aws_endpoint_url: None,
            object_store: ObjectBackend::Local,
            s3_bucket: None,
            store_backend: StoreBackend::Sqlite,
            dynamodb_table_prefix: "shop-".into(),
            search_backend: SearchBackend::Tantivy,
            opensearch_url: None,
            opensearch_index: "products".into(),
            image_max_bytes: 10 * 1024 * 1024,
            reservation_ttl_secs: 15 * 60,
            reservation_sweep_ms: 1_000,
            saga_step_timeout_ms: 30_000,
            cart_abandon_secs: 24 * 60 * 60,
            cognito_issuer: None,
            cognito_client_id: None,
            mail_sink: MailBackend::Folder,
            mail_from: DEFAULT_MAIL_FROM.into(),
            search_cache_pages: 4_096,
            bulk_body_limit_bytes: 512 * 1024 * 1024,
            cdn_base_url: None,
            url_signing_key: None,
            cache: CacheBackend::Memory,
            redis_url: None,
            cache_max_entries: 100_000,
            database_url: None,
            stripe_webhook_secret: None,
            payment_provider: PaymentProvider::Simulated,
            stripe_secret_key: None,
            stripe_api_base: Url::parse("https://api.stripe.com").expect("a URL"),
            payment_timeout_ms: 10_000,
            simulated_latency_ms: 0,
            simulated_failure_rate: 0.0,
            jwt_issuer: "shop".into(),
            jwt_audience: "shop-api".into(),
            jwks_url: None,
            jwt_private_keys: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 60 * 60,
            refresh_grace_ms: 10_000,
            user_url: None,
            product_url: None,
            order_url: None,
            payment_url: None,
            inventory_url: None,
        }
    }
}

/// A configuration value that cannot be used; `variable` names where it came from.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    /// The environment variable (or file key) at fault, e.g. `SHOP_PORT`.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self { variable: env_name(field), message: message.into() }
    }
}

/// The environment variable that sets a config field.
pub fn env_name(field: &str) -> String {
    format!("{ENV_PREFIX}{}", field.replace('.', "__").to_ascii_uppercase())
}

impl Config {
    /// Loads the configuration from the process environment (and the file `SHOP_CONFIG` names).
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment())
    }

    /// The layered sources, for callers that add their own (the CLI's flags) on top.
    pub fn figment() -> Figment {
        let mut figment = Figment::new();
        if let Ok(path) = std::env::var("SHOP_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        // `SHOP_TEST_*` point test suites at their servers; they are not settings.
        figment.merge(
            Env::prefixed(ENV_PREFIX)
                .ignore(&["config"])
                .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_")),
        )
    }

    /// Extracts and validates a configuration from any figment (tests build their own).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|error| {
            let error = error.into_iter().next().expect("a figment error has at least one cause");
            let field = error.path.join(".");
            let message = match &error.kind {
                figment::error::Kind::UnknownField(name, _) => {
                    return ConfigError::new(name, "unknown setting");
                }
                kind => kind.to_string(),
            };
            if field.is_empty() {
                ConfigError { variable: "SHOP_CONFIG".into(), message: error.to_string() }
            } else {
                ConfigError::new(&field, message)
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules that span several settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.object_store == ObjectBackend::S3 && self.s3_bucket.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new("s3_bucket", "is required when SHOP_OBJECT_STORE=s3"));
        }
        if self.cache == CacheBackend::Redis && self.redis_url.is_none() {
            return Err(ConfigError::new("redis_url", "is required when SHOP_CACHE=redis"));
        }
        if self.search_backend == SearchBackend::Opensearch && self.opensearch_url.is_none() {
            return Err(ConfigError::new("opensearch_url", "is required when SHOP_SEARCH_BACKEND=opensearch"));
        }
        if self.payment_provider == PaymentProvider::Stripe
            && self.stripe_secret_key.as_ref().is_none_or(|k| k.expose_secret().is_empty())
        {
            return Err(ConfigError::new("stripe_secret_key", "is required when SHOP_PAYMENT_PROVIDER=stripe"));
        }
        if !(0.0..=1.0).contains(&self.simulated_failure_rate) {
            return Err(ConfigError::new("simulated_failure_rate", "must be between 0 and 1"));
        }
        if !(100..=120_000).contains(&self.payment_timeout_ms) {
            return Err(ConfigError::new("payment_timeout_ms", "must be between 100 ms and 2 minutes"));
        }
        if self.image_max_bytes == 0 {
            return Err(ConfigError::new("image_max_bytes", "must be greater than 0"));
        }
        if !(1..=crate::contracts::inventory::MAX_TTL_SECONDS).contains(&self.reservation_ttl_secs) {
            return Err(ConfigError::new("reservation_ttl_secs", "must be between 1 second and a day"));
        }
        if !(1..=90 * 24 * 60 * 60).contains(&self.cart_abandon_secs) {
            return Err(ConfigError::new("cart_abandon_secs", "must be between 1 second and 90 days"));
        }
        if !(100..=crate::contracts::order::MAX_SAGA_STEP_MS).contains(&self.saga_step_timeout_ms) {
            return Err(ConfigError::new(
                "saga_step_timeout_ms",
                "must be between 100 ms and 112.5 s (112500): the checkout's 15-minute stock hold must outlast \
                 the seven step timeouts before a commit is asked for again",
            ));
        }
        if !(10..=60 * 60 * 1000).contains(&self.reservation_sweep_ms) {
            return Err(ConfigError::new("reservation_sweep_ms", "must be between 10 ms and an hour"));
        }
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::new("body_limit_bytes", "must be greater than 0"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new("request_timeout_ms", "must be greater than 0"));
        }
        if self.rate_limit_enabled && (self.rate_limit_per_second == 0 || self.rate_limit_burst == 0) {
            return Err(ConfigError::new(
                "rate_limit_per_second",
                "rate limits must be greater than 0 (or set SHOP_RATE_LIMIT_ENABLED=false)",
            ));
        }
        if !(30..=24 * 60 * 60).contains(&self.access_token_ttl_secs) {
            return Err(ConfigError::new("access_token_ttl_secs", "must be between 30 seconds and a day"));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(ConfigError::new(
                "refresh_token_ttl_secs",
                "must not be shorter than the access-token lifetime",
            ));
        }
        if self.refresh_grace_ms > 60_000 {
            return Err(ConfigError::new("refresh_grace_ms", "must be at most a minute (0 turns the grace off)"));
        }
        if self.sqs_wait_seconds > 20 {
            return Err(ConfigError::new("sqs_wait_seconds", "must be between 0 and 20"));
        }
        if self.cognito_issuer.is_some() != self.cognito_client_id.as_deref().is_some_and(|c| !c.trim().is_empty()) {
            return Err(ConfigError::new(
                "cognito_issuer",
                "SHOP_COGNITO_ISSUER and SHOP_COGNITO_CLIENT_ID go together (both set, or neither)",
            ));
        }
        if !self.mail_from.contains('@') || self.mail_from.contains(['\r', '\n']) {
            return Err(ConfigError::new("mail_from", "must be an email address, such as Shop <shop@example.com>"));
        }
        if self.aws_region.trim().is_empty() {
            return Err(ConfigError::new("aws_region", "must not be empty"));
        }
        for origin in self.cors_origin_list() {
            if origin != "*" && Url::parse(origin).is_err() {
                return Err(ConfigError::new("cors_origins", format!("{origin:?} is not an origin URL")));
            }
        }
        if let Some(url) = &self.database_url {
            use secrecy::ExposeSecret;
            let url = url.expose_secret();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::new("database_url", "must be a postgres:// URL"));
            }
        }
        Ok(())
    }

    /// The CORS origins as a list.
    pub fn cors_origin_list(&self) -> impl Iterator<Item = &str> {
        self.cors_origins.split(',').map(str::trim).filter(|s| !s.is_empty())
    }

    /// The base URL clients reach this process on.
    pub fn public_url(&self) -> Url {
        self.public_url
            .clone()
            .unwrap_or_else(|| Url::parse(&format!("http://localhost:{}", self.port)).expect("a valid URL"))
    }

    /// Request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Shutdown grace period as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// A configuration for tests: embedded backends under `data_dir`, rate limiting off, quiet.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            port: 0,
            data_dir: data_dir.into(),
            rate_limit_enabled: false,
            shutdown_grace_ms: 2_000,
            ..Self::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its own large error type
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn defaults_give_the_embedded_mode() {
        Jail::expect_with(|_| {
            let config = Config::load().unwrap();
            assert_eq!(config.port, 8080);
            assert_eq!(config.event_bus, BusBackend::Sqlite);
            assert_eq!(config.object_store, ObjectBackend::Local);
            assert_eq!(config.cache, CacheBackend::Memory);
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("shop.toml", "port = 9000\nevent_bus = \"sqs\"\n")?;
            jail.set_env("SHOP_CONFIG", "shop.toml");
            jail.set_env("SHOP_PORT", "9100");
            let config = Config::load().unwrap();
            assert_eq!(config.port, 9100);
            assert_eq!(config.event_bus, BusBackend::Sqs);
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_PORT", "eighty");
            let error = Config::load().unwrap_err();
            assert_eq!(error.variable, "SHOP_PORT");
            jail.set_env("SHOP_PORT", "8080");
            jail.set_env("SHOP_EVENT_BUS", "kafka");
            let error = Config::load().unwrap_err();
            assert_eq!(error.variable, "SHOP_EVENT_BUS");
            assert!(error.message.contains("kafka"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_rejected() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_PROT", "8080");
            let error = Config::load().unwrap_err();
            assert_eq!(error.variable, "SHOP_PROT");
            Ok(())
        });
    }

    #[test]
    fn cross_field_rules_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_OBJECT_STORE", "s3");
            assert_eq!(Config::load().unwrap_err().variable, "SHOP_S3_BUCKET");
            jail.set_env("SHOP_S3_BUCKET", "images");
            jail.set_env("SHOP_CACHE", "redis");
            assert_eq!(Config::load().unwrap_err().variable, "SHOP_REDIS_URL");
            jail.set_env("SHOP_REDIS_URL", "redis://127.0.0.1");
            jail.set_env("SHOP_DATABASE_URL", "mysql://x");
            assert_eq!(Config::load().unwrap_err().variable, "SHOP_DATABASE_URL");
            Ok(())
        });
    }

    #[test]
    fn test_server_variables_are_not_settings() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_TEST_DATABASE_URL", "postgres://127.0.0.1/test");
            assert!(Config::load().is_ok());
            Ok(())
        });
    }

    #[test]
    fn secrets_are_not_printed() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_REDIS_URL", "redis://:hunter2@127.0.0.1");
            jail.set_env("SHOP_EDGE_SECRET", "edge-hunter3");
            let config = Config::load().unwrap();
            assert!(!format!("{config:?}").contains("hunter2"));
            assert!(!format!("{config:?}").contains("hunter3"));
            assert!(config.edge_secret.is_some());
            Ok(())
        });
    }
}
