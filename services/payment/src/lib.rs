//! The payment service: payment intents with the provider (Stripe, or the simulated provider), the
//! transaction log, refunds and webhooks. No card data ever reaches it: it holds provider tokens and
//! references only.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and
//! `run` serves it as its own process (the `payment-service` binary).

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;

use axum::Router;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::store::WebhookStore;
use crate::store::sqlite::SqliteWebhookStore;

/// The service's name.
pub const NAME: &str = "payment";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    scope: NAME,
    version: 1,
    name: "webhooks",
    sql: include_str!("../../../migrations/payment/sqlite/0001_webhooks.sql"),
}];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Webhook events received.
    pub webhooks: Arc<dyn WebhookStore>,
    /// The Stripe webhook signing secret; `None` refuses every webhook.
    pub stripe_webhook_secret: Option<SecretString>,
}

/// The service's API routes.
pub fn router(state: AppState) -> Router {
    api::router().with_state(state)
}

/// Wires the service into a process: stores, routes, checks (no outbox relay yet: it writes no events).
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let db = infra.open_sqlite(NAME, MIGRATIONS)?;
    let state = AppState {
        webhooks: Arc::new(SqliteWebhookStore::new(db.clone())),
        stripe_webhook_secret: infra.config.stripe_webhook_secret.clone(),
    };
    Ok(Service { name: NAME, router: router(state), openapi: api::openapi(), checks: vec![Arc::new(db)] })
}

/// Serves the service as its own process until shutdown.
pub async fn run(config: platform::Config, listener: TcpListener) -> anyhow::Result<()> {
    platform::infra::run_single(config, listener, build).await
}
