//! The user service: accounts, credentials, tokens, sessions and MFA, and the key set every service
//! verifies access tokens with.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and
//! `run` serves it as its own process (the `user-service` binary).

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;

use axum::Router;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::store::UserStore;
use crate::store::sqlite::SqliteUserStore;

/// The service's name.
pub const NAME: &str = "user";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    scope: NAME,
    version: 1,
    name: "users",
    sql: include_str!("../../../migrations/user/sqlite/0001_users.sql"),
}];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Wakes the outbox relay after a commit that wrote events.
    pub outbox: Arc<Notify>,
}

/// The service's API routes.
pub fn router(state: AppState) -> Router {
    api::router().with_state(state)
}

/// Wires the service into a process: stores, outbox relay, routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    let outbox = infra.spawn_sqlite_relay(&db);
    let state = AppState { users: Arc::new(SqliteUserStore::new(db.clone())), outbox };
    Ok(Service { name: NAME, router: router(state), openapi: api::openapi(), checks: vec![Arc::new(db)] })
}

/// Serves the service as its own process until shutdown.
pub async fn run(config: platform::Config, listener: TcpListener) -> anyhow::Result<()> {
    platform::infra::run_single(config, listener, build).await
}
