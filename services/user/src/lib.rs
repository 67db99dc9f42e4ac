//! The user service: accounts, credentials, tokens, sessions and MFA, and the key set every service
//! verifies access tokens with.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and the
//! shop crate serves it as its own process (the `user-service` binary).

pub mod api;
pub mod app;
pub mod consumers;
pub mod domain;
pub mod settings;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use platform::auth::TokenVerifier;
use platform::cache::Cache;
use platform::config::CacheBackend;
use platform::events::Consumer;
use platform::events::outbox::OutboxSignal;
use platform::http::ops::ReadinessCheck;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use secrecy::ExposeSecret;

use crate::app::keys::KeyRing;
use crate::settings::{MailBackend, Settings};
use crate::store::postgres::{PG_MIGRATIONS, PgUserStore};
use crate::store::redis::RedisSessionStore;
use crate::store::sqlite::{SqliteSessionStore, SqliteUserStore};
use crate::store::{SessionStore, UserStore};

/// The service's name.
pub const NAME: &str = "user";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "users",
        sql: include_str!("../../../migrations/user/sqlite/0001_users.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "accounts",
        sql: include_str!("../../../migrations/user/sqlite/0002_accounts.sql"),
    },
    Migration {
        scope: NAME,
        version: 3,
        name: "credentials_changed",
        sql: include_str!("../../../migrations/user/sqlite/0003_credentials_changed.sql"),
    },
    Migration {
        scope: NAME,
        version: 4,
        name: "identity",
        sql: include_str!("../../../migrations/user/sqlite/0004_identity.sql"),
    },
];

/// Token lifetimes and naming, from the configuration.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// How long a spent refresh token still answers with its successor.
    pub refresh_grace: Duration,
    /// How the client's address is read (for login throttling by address).
    pub client: platform::http::rate_limit::ClientAddress,
}

impl TokenSettings {
    /// The settings a configuration and the service's settings name.
    pub fn from_config(config: &platform::Config, settings: &Settings) -> Self {
        Self {
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: Duration::from_secs(settings.access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(settings.refresh_token_ttl_secs),
            refresh_grace: Duration::from_millis(settings.refresh_grace_ms),
            client: platform::http::rate_limit::ClientAddress::from_config(config),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Refresh-token families.
    pub sessions: Arc<dyn SessionStore>,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Verifies the service's own access tokens.
    pub verifier: Arc<TokenVerifier>,
    /// Login-throttle counters.
    pub cache: Arc<dyn Cache>,
    /// Token settings.
    pub tokens: Arc<TokenSettings>,
    /// Verifies the Cognito user pool's ID tokens, when sign-in with the pool is on.
    pub cognito: Option<Arc<TokenVerifier>>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's API routes.
pub fn router(state: AppState) -> Router {
    api::router().with_state(state)
}

/// The service's outbox on the stores a configuration names (for `shop events parked`).
pub async fn outbox(config: &platform::Config) -> anyhow::Result<Arc<dyn platform::events::outbox::OutboxStore>> {
    Ok(match user_store(config).await?.1 {
        UserBackend::Postgres(pool) => Arc::new(platform::postgres::PgOutbox(pool)),
        UserBackend::Sqlite(db) => Arc::new(platform::events::outbox::SqliteOutbox(db)),
    })
}

/// The account store a configuration names, migrated: PostgreSQL when `SHOP_DATABASE_URL` is set,
/// else SQLite under the data dir. Nothing is started (the CLI uses it as it is): the events it
/// writes wait in the outbox for the service's relay.
pub async fn user_store(config: &platform::Config) -> anyhow::Result<(Arc<dyn UserStore>, UserBackend)> {
    let embedded = || {
        let path = config.data_dir.join(format!("{NAME}.db"));
        let (db, _) = platform::sqlite::Db::open_migrated(&path, MIGRATIONS)
            .with_context(|| format!("cannot open and migrate {}", path.display()))?;
        Ok(db)
    };
    accounts(config, embedded, OutboxSignal::default()).await
}

/// The account store, waking `outbox` after commits that wrote events: PostgreSQL when
/// configured, else the open and migrated database `embedded` gives (called only then).
async fn accounts(
    config: &platform::Config,
    embedded: impl FnOnce() -> anyhow::Result<platform::sqlite::Db>,
    outbox: OutboxSignal,
) -> anyhow::Result<(Arc<dyn UserStore>, UserBackend)> {
    match &config.database_url {
        Some(url) => {
            let pool = platform::postgres::connect(url, 10).await.context("cannot connect to SHOP_DATABASE_URL")?;
            platform::postgres::migrate(&pool, platform::postgres::PLATFORM_MIGRATIONS).await?;
            platform::postgres::migrate(&pool, PG_MIGRATIONS).await?;
            Ok((Arc::new(PgUserStore::new(pool.clone()).waking(outbox)), UserBackend::Postgres(pool)))
        }
        None => {
            let db = embedded()?;
            Ok((Arc::new(SqliteUserStore::new(db.clone()).waking(outbox)), UserBackend::Sqlite(db)))
        }
    }
}

/// Where the accounts live (for the outbox relay and the readiness check).
#[derive(Debug, Clone)]
pub enum UserBackend {
    /// The embedded database.
    Sqlite(platform::sqlite::Db),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

/// The stores a configuration names (accounts as [`user_store`], with their outbox relay started;
/// sessions in Redis when the cache is Redis, else SQLite) and the stores' readiness checks.
pub async fn open_stores(
    infra: &Infra,
) -> anyhow::Result<(Arc<dyn UserStore>, Arc<dyn SessionStore>, Vec<Arc<dyn ReadinessCheck>>)> {
    let config = &infra.config;
    let settings: Settings = config.section()?;
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    let mut checks: Vec<Arc<dyn ReadinessCheck>> = vec![Arc::new(db.clone())];
    let outbox = OutboxSignal::default();
    // One handle on the embedded file: accounts (without PostgreSQL) and sessions share it.
    let (users, backend) = accounts(config, || Ok(db.clone()), outbox.clone()).await?;
    match backend {
        UserBackend::Postgres(pool) => {
            checks.push(Arc::new(platform::postgres::PgReadiness(pool.clone())));
            infra.spawn_relay(Arc::new(platform::postgres::PgOutbox(pool)), &outbox);
        }
        UserBackend::Sqlite(db) => infra.spawn_sqlite_relay(&db, &outbox),
    }
    let sessions: Arc<dyn SessionStore> = match (config.cache, &config.redis_url) {
        (CacheBackend::Redis, Some(url)) => Arc::new(
            RedisSessionStore::connect(url.expose_secret(), "shop:session:", settings.refresh_token_ttl_secs)
                .await
                .context("cannot connect to Redis for sessions")?,
        ),
        _ => Arc::new(SqliteSessionStore::new(db)),
    };
    Ok((users, sessions, checks))
}

/// Wires the service into a process: stores, keys, outbox relay, the mailer, routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let settings: Settings = infra.config.section()?;
    let (users, sessions, checks) = open_stores(&infra).await?;
    // The decoy hash that equalises failed-login timing is slow to make: make it now, not in the first
    // login for an unknown email (whose answer would then take measurably longer).
    tokio::task::spawn_blocking(domain::password::decoy);
    let keys = Arc::new(match (&settings.jwt_private_keys, &infra.config.database_url) {
        (None, Some(url)) => {
            // Shared by every task of the service, in its database (migrated by `open_stores`).
            let pool = platform::postgres::connect(url, 1).await.context("cannot connect to SHOP_DATABASE_URL")?;
            let keys = KeyRing::from_postgres(&pool).await?;
            pool.close().await;
            keys
        }
        _ => KeyRing::load(settings.jwt_private_keys.as_ref(), &infra.config.data_dir)?,
    });
    let tokens = Arc::new(TokenSettings::from_config(&infra.config, &settings));
    let verifier = Arc::new(TokenVerifier::local(&tokens.issuer, &tokens.audience));
    verifier.set_keys(keys.jwks());
    // Services in this process verify with the same keys without a round trip.
    infra.verifier.set_keys(keys.jwks());
    let sink: Arc<dyn app::mail::MailSink> = match settings.mail_sink {
        MailBackend::Folder => Arc::new(app::mail::FolderSink::new(infra.config.data_dir.join("mail"))),
        MailBackend::Ses => {
            let sdk = platform::aws::sdk_config(&infra.config).await;
            let client = aws_sdk_sesv2::Client::new(&sdk);
            Arc::new(app::mail::SesSink::new(client, settings.mail_from.clone(), infra.cache.clone()))
        }
    };
    let mailer = app::mail::Mailer::with_sink(sink)
        .from_address(settings.mail_from.clone())
        .with_users(users.clone())
        .with_keys(keys.clone())
        .linking_to(infra.config.public_url());
    infra.spawn_consumer(Consumer::new(infra.bus.clone(), consumers::QUEUE, Arc::new(mailer)));
    let cognito = cognito_verifier(&settings)?;
    let state = AppState { users, sessions, keys, verifier, cache: infra.cache.clone(), tokens, cognito };
    Ok(Service { name: NAME, router: router(state), openapi: api::openapi(), checks, not_found_page: None })
}

/// The verifier of the Cognito user pool's ID tokens (`SHOP_COGNITO_ISSUER`), keys fetched from the
/// pool's JWKS.
fn cognito_verifier(config: &Settings) -> anyhow::Result<Option<Arc<TokenVerifier>>> {
    let (Some(issuer), Some(client)) = (&config.cognito_issuer, &config.cognito_client_id) else { return Ok(None) };
    let issuer = issuer.as_str().trim_end_matches('/');
    let jwks = format!("{issuer}/.well-known/jwks.json").parse().context("the Cognito JWKS URL")?;
    Ok(Some(Arc::new(TokenVerifier::remote(issuer, client.trim(), jwks))))
}
