//! The product service: the catalog (categories, products, variants), its search index and images.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and
//! `run` serves it as its own process (the `product-service` binary).

pub mod api;
pub mod domain;
pub mod seed;
pub mod store;

use std::sync::Arc;

use axum::Router;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use tokio::net::TcpListener;

use axum::extract::FromRef;
use platform::auth::TokenVerifier;
use tokio::sync::Notify;

use crate::store::sqlite::{SqliteCategoryStore, SqliteProductStore};
use crate::store::{CategoryStore, ProductStore};

/// The service's name (its database file, its queue, its metrics dimension).
pub const NAME: &str = "product";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "categories",
        sql: include_str!("../../../migrations/product/sqlite/0001_categories.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "products",
        sql: include_str!("../../../migrations/product/sqlite/0002_products.sql"),
    },
];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The category tree.
    pub categories: Arc<dyn CategoryStore>,
    /// Products.
    pub products: Arc<dyn ProductStore>,
    /// Verifies access tokens (admin routes).
    pub verifier: Arc<TokenVerifier>,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: Arc<Notify>,
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

/// Opens the service's stores (migrating them) on `infra`, for tools that run no relay: events they
/// write wait in the outbox for the service's relay.
pub fn open_state(infra: &Infra) -> anyhow::Result<AppState> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    Ok(state(infra, db, Arc::new(Notify::new())))
}

fn state(infra: &Infra, db: platform::sqlite::Db, outbox: Arc<Notify>) -> AppState {
    AppState {
        categories: Arc::new(SqliteCategoryStore::new(db.clone())),
        products: Arc::new(SqliteProductStore::new(db)),
        verifier: infra.verifier.clone(),
        outbox,
    }
}

/// Wires the service into a process: stores, outbox relay, routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    let outbox = infra.spawn_sqlite_relay(&db);
    let state = state(&infra, db.clone(), outbox);
    Ok(Service { name: NAME, router: router(state), openapi: api::openapi(), checks: vec![Arc::new(db)] })
}

/// Serves the service as its own process until shutdown.
pub async fn run(config: platform::Config, listener: TcpListener) -> anyhow::Result<()> {
    platform::infra::run_single(config, listener, build).await
}
