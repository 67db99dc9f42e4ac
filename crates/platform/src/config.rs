//! Layered configuration: built-in defaults (the embedded mode) ← an optional TOML file named by
//! `SHOP_CONFIG` ← `SHOP_*` environment variables. Everything is validated once, at start; backend
//! choices become enums, and a bad value stops the process with a message naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Provider};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// What every process needs (bind, logging, event bus, AWS, cache, object store, auth
/// verification, the other services' addresses). Each service reads its own settings, a
/// [`Section`], from the same layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
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
    /// Bytes (keys, values, overhead) the in-process cache holds at most (`SHOP_CACHE_MAX_BYTES`).
    pub cache_max_bytes: usize,

    /// Document store backend (`SHOP_STORE_BACKEND`: sqlite | dynamodb).
    pub store_backend: StoreBackend,
    /// Prefix of every DynamoDB table name (`SHOP_DYNAMODB_TABLE_PREFIX`).
    pub dynamodb_table_prefix: String,
    /// Partition keys a service's DynamoDB outbox writes spread over, 1 to 16
    /// (`SHOP_OUTBOX_SHARDS`; 16). Relays always read all 16, so changing it strands nothing; the
    /// local fleet on the moto emulator uses 1, where every call costs far more than on DynamoDB.
    pub outbox_shards: u32,

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
    /// The layers it was read from, where each service reads its own section
    /// ([`Config::section`]).
    #[serde(skip)]
    pub layers: Layers,
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
            outbox_shards: 16,
            cdn_base_url: None,
            url_signing_key: None,
            cache: CacheBackend::Memory,
            redis_url: None,
            cache_max_entries: 100_000,
            cache_max_bytes: 64 * 1024 * 1024,
            database_url: None,
            jwt_issuer: "shop".into(),
            jwt_audience: "shop-api".into(),
            jwks_url: None,
            user_url: None,
            product_url: None,
            order_url: None,
            payment_url: None,
            inventory_url: None,
            layers: Layers::default(),
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
    /// The error of the setting `field` (its environment variable named).
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { variable: env_name(field), message: message.into() }
    }
}

/// The environment variable that sets a config field.
pub fn env_name(field: &str) -> String {
    format!("{ENV_PREFIX}{}", field.replace('.', "__").to_ascii_uppercase())
}

/// The layered sources settings are read from: built-in defaults ← the `SHOP_CONFIG` file ←
/// `SHOP_*` variables (← whatever a caller sets on top). Its `Debug` shows no values: they may
/// hold secrets.
#[derive(Clone, Default)]
pub struct Layers(Figment);

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layers(..)")
    }
}

impl Layers {
    /// Reads `T` from the layers; a bad value names its variable.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.0.extract().map_err(|error| {
            let error = error.into_iter().next().expect("a figment error has at least one cause");
            let field = error.path.join(".");
            if field.is_empty() {
                ConfigError { variable: "SHOP_CONFIG".into(), message: error.to_string() }
            } else {
                ConfigError::new(&field, error.kind.to_string())
            }
        })
    }

    /// The names set in any layer.
    fn names(&self) -> Result<Vec<String>, ConfigError> {
        let data = self
            .0
            .data()
            .map_err(|error| ConfigError { variable: "SHOP_CONFIG".into(), message: error.to_string() })?;
        Ok(data.into_values().flat_map(|dict| dict.into_keys()).collect())
    }
}

/// A service's own settings: a struct read from the same layers as [`Config`] (its fields named
/// as their `SHOP_*` variables, lower-cased and unprefixed), with the rules that span them.
pub trait Settings: DeserializeOwned + Default {
    /// Checks the rules that span several of its settings.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A service's settings, as a process that runs it declares them: so that its variables are known
/// and checked when the process starts.
#[derive(Clone, Copy)]
pub struct Section {
    /// The service.
    pub service: &'static str,
    fields: fn() -> &'static [&'static str],
    check: fn(&Layers) -> Result<(), ConfigError>,
}

impl Section {
    /// The section of `service`'s settings `S`.
    pub const fn of<S: Settings>(service: &'static str) -> Self {
        Self { service, fields: field_names::<S>, check: check_section::<S> }
    }

    /// The names of its settings.
    pub fn fields(&self) -> &'static [&'static str] {
        (self.fields)()
    }
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Section").field("service", &self.service).field("fields", &self.fields()).finish()
    }
}

fn check_section<S: Settings>(layers: &Layers) -> Result<(), ConfigError> {
    layers.extract::<S>()?.validate()
}

/// The field names of a struct `T` deserializes as (what its `Deserialize` asks for), read without
/// any data.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

impl Config {
    /// Loads the configuration from the process environment (and the file `SHOP_CONFIG` names),
    /// with the settings of the services this process runs: a variable that neither the platform
    /// nor one of them reads, or a bad value, is an error naming it.
    pub fn load(sections: &[Section]) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(), sections)
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

    /// Extracts and validates a configuration from any figment (tests build their own), with the
    /// sections of the services the process runs.
    pub fn from_figment(figment: Figment, sections: &[Section]) -> Result<Self, ConfigError> {
        let layers = Layers(figment);
        let own = field_names::<Config>();
        let mut names = layers.names()?;
        names.sort();
        for name in names {
            let known = own.contains(&name.as_str()) || sections.iter().any(|s| s.fields().contains(&name.as_str()));
            if !known {
                return Err(ConfigError::new(&name, "unknown setting"));
            }
        }
        let mut config: Config = layers.extract()?;
        config.validate()?;
        for section in sections {
            (section.check)(&layers)?;
        }
        config.layers = layers;
        Ok(config)
    }

    /// A service's own settings, read from the layers this configuration was read from (and
    /// whatever [`Config::set`] put on top); their defaults where nothing set them.
    pub fn section<S: Settings>(&self) -> Result<S, ConfigError> {
        let settings: S = self.layers.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Sets a setting of a service's section on top of every layer (tests; the CLI's flags).
    pub fn set(&mut self, name: &str, value: impl serde::Serialize) -> &mut Self {
        let layers = std::mem::take(&mut self.layers.0);
        self.layers.0 = layers.merge(figment::providers::Serialized::default(name, value));
        self
    }

    /// Checks the rules that span several settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.object_store == ObjectBackend::S3 && self.s3_bucket.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new("s3_bucket", "is required when SHOP_OBJECT_STORE=s3"));
        }
        if self.cache == CacheBackend::Redis && self.redis_url.is_none() {
            return Err(ConfigError::new("redis_url", "is required when SHOP_CACHE=redis"));
        }
        if !(1..=crate::dynamodb::OUTBOX_SHARDS).contains(&self.outbox_shards) {
            return Err(ConfigError::new("outbox_shards", "must be 1 to 16"));
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
        if self.sqs_wait_seconds > 20 {
            return Err(ConfigError::new("sqs_wait_seconds", "must be between 0 and 20"));
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
            let config = Config::load(&[]).unwrap();
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
            let config = Config::load(&[]).unwrap();
            assert_eq!(config.port, 9100);
            assert_eq!(config.event_bus, BusBackend::Sqs);
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_PORT", "eighty");
            let error = Config::load(&[]).unwrap_err();
            assert_eq!(error.variable, "SHOP_PORT");
            jail.set_env("SHOP_PORT", "8080");
            jail.set_env("SHOP_EVENT_BUS", "kafka");
            let error = Config::load(&[]).unwrap_err();
            assert_eq!(error.variable, "SHOP_EVENT_BUS");
            assert!(error.message.contains("kafka"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_rejected() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_PROT", "8080");
            let error = Config::load(&[]).unwrap_err();
            assert_eq!(error.variable, "SHOP_PROT");
            Ok(())
        });
    }

    #[test]
    fn cross_field_rules_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_OBJECT_STORE", "s3");
            assert_eq!(Config::load(&[]).unwrap_err().variable, "SHOP_S3_BUCKET");
            jail.set_env("SHOP_S3_BUCKET", "images");
            jail.set_env("SHOP_CACHE", "redis");
            assert_eq!(Config::load(&[]).unwrap_err().variable, "SHOP_REDIS_URL");
            jail.set_env("SHOP_REDIS_URL", "redis://127.0.0.1");
            jail.set_env("SHOP_DATABASE_URL", "mysql://x");
            assert_eq!(Config::load(&[]).unwrap_err().variable, "SHOP_DATABASE_URL");
            Ok(())
        });
    }

    #[test]
    fn test_server_variables_are_not_settings() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_TEST_DATABASE_URL", "postgres://127.0.0.1/test");
            assert!(Config::load(&[]).is_ok());
            Ok(())
        });
    }

    #[test]
    fn secrets_are_not_printed() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_REDIS_URL", "redis://:hunter2@127.0.0.1");
            jail.set_env("SHOP_EDGE_SECRET", "edge-hunter3");
            let config = Config::load(&[]).unwrap();
            assert!(!format!("{config:?}").contains("hunter2"));
            assert!(!format!("{config:?}").contains("hunter3"));
            assert!(config.edge_secret.is_some());
            Ok(())
        });
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        sample_timeout_ms: u64,
        sample_name: String,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self { sample_timeout_ms: 1_000, sample_name: "sample".into() }
        }
    }

    impl Settings for Sample {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.sample_timeout_ms == 0 {
                return Err(ConfigError::new("sample_timeout_ms", "must be greater than 0"));
            }
            Ok(())
        }
    }

    const SAMPLE: Section = Section::of::<Sample>("sample");

    #[test]
    fn a_section_names_its_fields() {
        assert_eq!(SAMPLE.fields(), ["sample_timeout_ms", "sample_name"]);
        assert!(field_names::<Config>().contains(&"event_bus"));
    }

    #[test]
    fn a_service_setting_is_known_only_where_its_section_is_declared() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_SAMPLE_TIMEOUT_MS", "250");
            assert_eq!(Config::load(&[]).unwrap_err().variable, "SHOP_SAMPLE_TIMEOUT_MS");
            let config = Config::load(&[SAMPLE]).unwrap();
            let sample: Sample = config.section().unwrap();
            assert_eq!(sample, Sample { sample_timeout_ms: 250, sample_name: "sample".into() });
            Ok(())
        });
    }

    #[test]
    fn a_bad_service_setting_stops_the_load_naming_its_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_SAMPLE_TIMEOUT_MS", "soon");
            let error = Config::load(&[SAMPLE]).unwrap_err();
            assert_eq!(error.variable, "SHOP_SAMPLE_TIMEOUT_MS");
            jail.set_env("SHOP_SAMPLE_TIMEOUT_MS", "0");
            let error = Config::load(&[SAMPLE]).unwrap_err();
            assert_eq!(
                (error.variable.as_str(), error.message.as_str()),
                ("SHOP_SAMPLE_TIMEOUT_MS", "must be greater than 0")
            );
            Ok(())
        });
    }

    #[test]
    fn a_setting_set_on_top_wins_over_every_layer() {
        Jail::expect_with(|jail| {
            jail.set_env("SHOP_SAMPLE_NAME", "from the environment");
            let mut config = Config::load(&[SAMPLE]).unwrap();
            config.set("sample_name", "set");
            assert_eq!(config.section::<Sample>().unwrap().sample_name, "set");
            assert_eq!(Config::for_tests("data").section::<Sample>().unwrap(), Sample::default());
            Ok(())
        });
    }
}
