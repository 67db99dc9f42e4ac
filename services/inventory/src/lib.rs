//! The inventory service: stock per SKU, reservations for the checkout saga, and the adjustment
//! ledger.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure (its
//! store, outbox relay, saga command consumer and expiry sweeper), which the shop crate serves as its own
//! process (the `inventory-service` binary).

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
use platform::config::StoreBackend;
use platform::events::Consumer;
use platform::events::outbox::{OutboxSignal, OutboxStore, SqliteOutbox};
use platform::http::ops::ReadinessCheck;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;

use crate::consumers::Commands;
use crate::store::InventoryStore;
use crate::store::dynamodb::DynamoInventoryStore;
use crate::store::sqlite::SqliteInventoryStore;

/// The service's name.
pub const NAME: &str = "inventory";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "stock",
        sql: include_str!("../../../migrations/inventory/sqlite/0001_stock.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "reservations_ledger",
        sql: include_str!("../../../migrations/inventory/sqlite/0002_reservations_ledger.sql"),
    },
];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Stock, reservations and the ledger.
    pub store: Arc<dyn InventoryStore>,
    /// Verifies access tokens (admin routes).
    pub verifier: Arc<TokenVerifier>,
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

/// The store a configuration names, with its outbox (for the relay), the signal it wakes the relay
/// with, and its readiness check.
pub struct Backend {
    /// The store.
    pub store: Arc<dyn InventoryStore>,
    /// Its outbox.
    pub outbox: Arc<dyn OutboxStore>,
    /// What the store wakes the outbox relay with after writing events.
    pub signal: OutboxSignal,
    /// Its readiness check.
    pub check: Arc<dyn ReadinessCheck>,
}

/// Opens the store `infra`'s configuration names (migrating it, or making its tables against an
/// emulator).
pub async fn open(infra: &Infra) -> anyhow::Result<Backend> {
    let signal = OutboxSignal::default();
    match infra.config.store_backend {
        StoreBackend::Sqlite => {
            let db = infra.open_sqlite(NAME, MIGRATIONS)?;
            Ok(Backend {
                store: Arc::new(SqliteInventoryStore::new(db.clone()).waking(signal.clone())),
                outbox: Arc::new(SqliteOutbox(db.clone())),
                signal,
                check: Arc::new(db),
            })
        }
        StoreBackend::Dynamodb => {
            let sdk = platform::aws::sdk_config(&infra.config).await;
            let inventory =
                DynamoInventoryStore::new(aws_sdk_dynamodb::Client::new(&sdk), &infra.config.dynamodb_table_prefix)
                    .waking(signal.clone());
            // On AWS the tables come from the CDK app; against an emulator (moto, LocalStack) we make them.
            if infra.config.aws_endpoint_url.is_some() {
                inventory.create_tables().await.context("cannot create the inventory's DynamoDB tables")?;
            }
            Ok(Backend {
                outbox: Arc::new(inventory.outbox()),
                signal,
                check: Arc::new(inventory.readiness()),
                store: Arc::new(inventory),
            })
        }
    }
}

/// How long a saga command the inventory received stays hidden from its other replicas while it
/// is handled. A third of the checkout's wait for the reservation (the order service's step
/// timeout, 30 s by default), so a command taken by a replica that died before it answered is
/// delivered again while the saga still waits, instead of after the saga gave the order up. Every
/// command is keyed by its order, so one handled twice (a batch slower than this) changes nothing.
pub const COMMAND_VISIBILITY: Duration = Duration::from_secs(10);

/// The service's outbox on the stores `infra`'s configuration names (for `shop events parked`).
pub async fn outbox(infra: &Infra) -> anyhow::Result<Arc<dyn OutboxStore>> {
    Ok(open(infra).await?.outbox)
}

/// Wires the service into a process: store, outbox relay, saga command consumer, expiry sweeper,
/// routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let backend = open(&infra).await?;
    infra.spawn_relay(backend.outbox, &backend.signal);
    let settings: settings::Settings = infra.config.section()?;
    let commands =
        Commands::new(backend.store.clone(), infra.bus.clone(), Duration::from_secs(settings.reservation_ttl_secs));
    infra.spawn_consumer(
        Consumer::new(infra.bus.clone(), consumers::QUEUE, Arc::new(commands)).batch(64).visibility(COMMAND_VISIBILITY),
    );
    infra.tasks.spawn(app::sweep(
        backend.store.clone(),
        Duration::from_millis(settings.reservation_sweep_ms),
        infra.shutdown.clone(),
    ));
    let state = AppState { store: backend.store, verifier: infra.verifier.clone() };
    Ok(Service {
        name: NAME,
        router: router(state),
        openapi: api::openapi(),
        checks: vec![backend.check],
        not_found_page: None,
    })
}

#[cfg(test)]
mod tests {
    use super::COMMAND_VISIBILITY;

    #[test]
    fn a_command_comes_back_well_before_the_checkout_stops_waiting_for_its_reservation() {
        // The order service's default step timeout (SHOP_SAGA_STEP_TIMEOUT_MS), which a
        // reservation must answer within.
        let reservation_step = std::time::Duration::from_secs(30);
        assert!(COMMAND_VISIBILITY * 3 <= reservation_step);
        assert!(COMMAND_VISIBILITY >= std::time::Duration::from_secs(1));
    }
}
