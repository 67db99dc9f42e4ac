//! The shared infrastructure of a process: the event bus, object store and cache its configuration
//! names, the shutdown token and the background tasks (outbox relays, consumers). A service binary
//! builds one for itself; `shop up` builds one and hands it to all five services.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::cache::Cache;
use crate::cache::memory::MemoryCache;
use crate::cache::redis::RedisCache;
use crate::client::{InProcessHandle, ServiceClient};
use crate::config::{BusBackend, CacheBackend, Config, ObjectBackend, Section};
use crate::events::outbox::{OutboxRelay, OutboxSignal, OutboxStore, SqliteOutbox};
use crate::events::sqlite::SqliteQueue;
use crate::events::sqs::SqsBus;
use crate::events::{Consumer, EventBus, Routing};
use crate::http::layers::HttpSettings;
use crate::http::ops::{Ops, ReadinessCheck};
use crate::objects::ObjectStore;
use crate::objects::local::{LocalObjectStore, upload_router};
use crate::objects::s3::S3ObjectStore;
use crate::sqlite::Db;

/// How long an embedded-queue receive waits for a message before the consumer loops.
const QUEUE_WAIT: Duration = Duration::from_secs(1);
/// How often an outbox relay looks when nobody wakes it.
const RELAY_INTERVAL: Duration = Duration::from_millis(500);

/// One service's contribution to a process: its API routes, OpenAPI document and dependency checks.
pub struct Service {
    /// The service's name.
    pub name: &'static str,
    /// Its API routes (the operations routes are added by [`Infra::serve`]).
    pub router: Router,
    /// Its OpenAPI document.
    pub openapi: utoipa::openapi::OpenApi,
    /// What its `/ready` checks beyond the shared infrastructure.
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// The page a browser gets for a path nothing serves (the web tier's "not found" page); API
    /// clients get a problem+json 404 whatever this is.
    pub not_found_page: Option<fn() -> axum::response::Response>,
}

/// The shared infrastructure of a process.
#[derive(Clone)]
pub struct Infra {
    /// The configuration.
    pub config: Arc<Config>,
    /// The event bus.
    pub bus: Arc<dyn EventBus>,
    /// The object store.
    pub objects: Arc<dyn ObjectStore>,
    /// The cache.
    pub cache: Arc<dyn Cache>,
    /// Verifies access tokens.
    pub verifier: Arc<TokenVerifier>,
    /// Cancelled when the process is asked to stop.
    pub shutdown: CancellationToken,
    /// The background tasks to drain on shutdown.
    pub tasks: TaskTracker,
    local_objects: Option<LocalObjectStore>,
    /// In-process clients waiting for their service's router ([`Infra::app`] wires them).
    clients: Arc<std::sync::Mutex<Vec<(&'static str, InProcessHandle)>>>,
}

impl std::fmt::Debug for Infra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infra").field("data_dir", &self.config.data_dir).finish()
    }
}

impl Infra {
    /// Builds the infrastructure `config` names; events are routed to the queues of `routing` (the
    /// subscriptions of the deployment's services).
    pub async fn build(config: Config, routing: Routing) -> anyhow::Result<Self> {
        if config.metrics_emf {
            crate::telemetry::emf::enable();
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        let needs_aws = config.event_bus == BusBackend::Sqs || config.object_store == ObjectBackend::S3;
        let sdk = if needs_aws { Some(crate::aws::sdk_config(&config).await) } else { None };

        let bus: Arc<dyn EventBus> = match config.event_bus {
            BusBackend::Sqlite => Arc::new(
                SqliteQueue::open(config.data_dir.join("events.db"), routing, QUEUE_WAIT)
                    .context("cannot open the event queue")?,
            ),
            BusBackend::Sqs => Arc::new(SqsBus::new(
                crate::aws::sqs_client(sdk.as_ref().expect("AWS is configured for SQS")),
                config.sqs_queue_prefix.clone(),
                routing,
                config.sqs_wait_seconds,
            )),
        };

        crate::dynamodb::set_outbox_write_shards(config.outbox_shards);
        let mut local_objects = None;
        let objects: Arc<dyn ObjectStore> = match config.object_store {
            ObjectBackend::Local => {
                let key = match &config.url_signing_key {
                    Some(key) => key.clone(),
                    None => persistent_secret(&config.data_dir.join("secrets/url-signing.key"))?,
                };
                let store = LocalObjectStore::new(
                    config.data_dir.join("objects"),
                    &config.public_url(),
                    config.cdn_base_url.as_ref(),
                    key,
                )?;
                local_objects = Some(store.clone());
                Arc::new(store)
            }
            ObjectBackend::S3 => Arc::new(S3ObjectStore::new(
                config.s3_bucket.as_deref().expect("validated: S3 has a bucket"),
                &config.aws_region,
                config.aws_endpoint_url.as_ref(),
                config.cdn_base_url.as_ref(),
            )?),
        };

        let cache: Arc<dyn Cache> = match config.cache {
            CacheBackend::Memory => {
                Arc::new(MemoryCache::new(config.cache_max_entries).with_max_bytes(config.cache_max_bytes))
            }
            CacheBackend::Redis => Arc::new(
                RedisCache::connect(
                    config.redis_url.as_ref().expect("validated: Redis has a URL").expose_secret(),
                    "shop:",
                )
                .await
                .context("cannot connect to Redis (SHOP_REDIS_URL)")?,
            ),
        };

        let jwks_url = config
            .jwks_url
            .clone()
            .or_else(|| config.user_url.as_ref().and_then(|base| base.join(".well-known/jwks.json").ok()));
        let verifier = Arc::new(match jwks_url {
            Some(url) => TokenVerifier::remote(&config.jwt_issuer, &config.jwt_audience, url),
            None => TokenVerifier::local(&config.jwt_issuer, &config.jwt_audience),
        });

        Ok(Self {
            config: Arc::new(config),
            bus,
            objects,
            cache,
            verifier,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            local_objects,
            clients: Arc::default(),
        })
    }

    /// A client of `service`: over HTTP at `url` when the caller has one configured for it
    /// (`SHOP_PRODUCT_URL`, …), otherwise through its router in this process (wired when the
    /// process's app is built).
    pub fn client(&self, service: &'static str, url: Option<&url::Url>) -> ServiceClient {
        match url {
            Some(base) => ServiceClient::http(service, base.clone()),
            None => {
                let (client, handle) = ServiceClient::in_process(service);
                self.clients.lock().unwrap_or_else(|e| e.into_inner()).push((service, handle));
                client
            }
        }
    }

    /// Opens (creating and migrating) the SQLite database `{data_dir}/{name}.db`, with the platform's
    /// outbox and inbox tables and then `migrations`.
    pub fn open_sqlite(&self, name: &str, migrations: &[crate::sqlite::Migration]) -> anyhow::Result<Db> {
        let path: PathBuf = self.config.data_dir.join(format!("{name}.db"));
        let (db, _) = Db::open_migrated(&path, migrations)
            .with_context(|| format!("cannot open and migrate {}", path.display()))?;
        Ok(db)
    }

    /// Starts the relay of a SQLite outbox, woken by `signal` (the one its stores hold).
    pub fn spawn_sqlite_relay(&self, db: &Db, signal: &OutboxSignal) {
        self.spawn_relay(Arc::new(SqliteOutbox(db.clone())), signal);
    }

    /// Starts the relay of any outbox, woken by `signal` (the one the stores writing it hold).
    pub fn spawn_relay(&self, store: Arc<dyn OutboxStore>, signal: &OutboxSignal) {
        let relay = OutboxRelay::new(store, self.bus.clone(), RELAY_INTERVAL).woken_by(signal.clone());
        self.tasks.spawn(relay.run(self.shutdown.clone()));
    }

    /// Starts a consumer; it drains on shutdown.
    pub fn spawn_consumer(&self, consumer: Consumer) {
        self.tasks.spawn(consumer.run(self.shutdown.clone()));
    }

    /// The checks of the shared infrastructure.
    pub fn readiness_checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        vec![
            Arc::new(BusCheck(self.bus.clone())),
            Arc::new(CacheCheck(self.cache.clone())),
            Arc::new(ObjectsCheck(self.objects.clone())),
        ]
    }

    /// Serves `services` on `listener` (their routes merged, with the operations endpoints for the
    /// whole process) until shutdown, then drains the background tasks.
    pub async fn serve(&self, listener: TcpListener, services: Vec<Service>) -> anyhow::Result<()> {
        let app = self.app(services);
        crate::http::serve::serve(listener, app, self.shutdown.clone(), self.config.shutdown_grace())
            .await
            .context("the HTTP server failed")?;
        self.stop().await;
        Ok(())
    }

    /// The whole router of `services`, with the operations endpoints and the middleware stack.
    pub fn app(&self, services: Vec<Service>) -> Router {
        let mut api = Router::new();
        let mut document = utoipa::openapi::OpenApiBuilder::new()
            .info(
                utoipa::openapi::InfoBuilder::new()
                    .title("Shop API")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some("The public and admin API of the shop platform.")),
            )
            .build();
        let mut checks = self.readiness_checks();
        let mut not_found_page = None;
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for service in services {
            for (_, handle) in clients.iter().filter(|(name, _)| *name == service.name) {
                handle.wire(service.router.clone());
            }
            api = api.merge(service.router);
            document.merge(service.openapi);
            checks.extend(service.checks);
            not_found_page = not_found_page.or(service.not_found_page);
        }
        if let Some(store) = &self.local_objects {
            api = api.merge(upload_router(store.clone()));
        }
        let app = api.merge(Ops::new(&document).checks(checks).router());
        crate::http::layers::apply_with_pages(app, &HttpSettings::from_config(&self.config), not_found_page)
    }

    /// Cancels the shutdown token and waits (at most the grace period) for background tasks.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(self.config.shutdown_grace(), self.tasks.wait()).await.is_err() {
            tracing::warn!("background tasks outlived the grace period");
        }
    }
}

/// A secret kept in a file under the data dir, made on first use.
fn persistent_secret(path: &std::path::Path) -> anyhow::Result<SecretString> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(SecretString::from(existing.to_owned()));
        }
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let secret = hex::encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(SecretString::from(secret))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

struct BusCheck(Arc<dyn EventBus>);
struct CacheCheck(Arc<dyn Cache>);
struct ObjectsCheck(Arc<dyn ObjectStore>);

#[async_trait]
impl ReadinessCheck for BusCheck {
    fn name(&self) -> &str {
        "event_bus"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| crate::error::cause_chain(&e))
    }
}

#[async_trait]
impl ReadinessCheck for CacheCheck {
    fn name(&self) -> &str {
        "cache"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| crate::error::cause_chain(&e))
    }
}

#[async_trait]
impl ReadinessCheck for ObjectsCheck {
    fn name(&self) -> &str {
        "object_store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| crate::error::cause_chain(&e))
    }
}

/// Runs one service as its own process: the body of every service binary's `main`, with the
/// deployment's event `routing` and the service's `build`. Loads and checks the configuration
/// with the service's `settings` (an unknown variable or a bad value exits with status 2 and a
/// message naming the variable), starts telemetry, listens, and serves until SIGTERM or Ctrl-C.
pub async fn service_main<F, Fut>(
    name: &'static str,
    settings: Section,
    routing: Routing,
    build: F,
) -> std::process::ExitCode
where
    F: FnOnce(Infra) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Service>>,
{
    crate::install_crypto_provider();
    let config = match Config::load(&[settings]) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.log_format, &config.log);
    let listener = match TcpListener::bind((config.bind, config.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: cannot listen on {}:{}: {error}", config.bind, config.port);
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(service = name, address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
    match run_single(config, routing, listener, build).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(service = name, error = format!("{error:#}"), "service failed");
            eprintln!("{name}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Builds the infrastructure `config` names and serves one service on `listener` until shutdown.
pub async fn run_single<F, Fut>(config: Config, routing: Routing, listener: TcpListener, build: F) -> anyhow::Result<()>
where
    F: FnOnce(Infra) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Service>>,
{
    let infra = Infra::build(config, routing).await?;
    crate::http::serve::cancel_on_signal(infra.shutdown.clone());
    let service = build(infra.clone()).await?;
    infra.serve(listener, vec![service]).await
}
