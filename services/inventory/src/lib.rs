//! The inventory service: stock per SKU, reservations for the checkout saga, and the adjustment
//! ledger.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and
//! `run` serves it as its own process (the `inventory-service` binary).

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;

use axum::Router;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use tokio::net::TcpListener;

use crate::store::StockStore;
use crate::store::sqlite::SqliteStockStore;

/// The service's name.
pub const NAME: &str = "inventory";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    scope: NAME,
    version: 1,
    name: "stock",
    sql: include_str!("../../../migrations/inventory/sqlite/0001_stock.sql"),
}];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Stock levels.
    pub stock: Arc<dyn StockStore>,
}

/// The service's API routes.
pub fn router(state: AppState) -> Router {
    api::router().with_state(state)
}

/// Opens the stock store (migrating it) on `infra`, for tools (the seeder).
pub fn open_stock(infra: &Infra) -> anyhow::Result<Arc<dyn StockStore>> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    Ok(Arc::new(SqliteStockStore::new(db)))
}

/// Wires the service into a process: stores, routes, checks (no outbox relay yet: it writes no events).
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    let state = AppState { stock: Arc::new(SqliteStockStore::new(db.clone())) };
    Ok(Service { name: NAME, router: router(state), openapi: api::openapi(), checks: vec![Arc::new(db)] })
}

/// Serves the service as its own process until shutdown.
pub async fn run(config: platform::Config, listener: TcpListener) -> anyhow::Result<()> {
    platform::infra::run_single(config, listener, build).await
}
