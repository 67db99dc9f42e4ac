//! The order service: carts, checkout, orders and the checkout saga.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and the
//! shop crate serves it as its own process (the `order-service` binary).

pub mod api;
pub mod app;
pub mod catalog;
pub mod consumers;
pub mod domain;
pub mod label;
pub mod settings;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use platform::auth::TokenVerifier;
use platform::events::outbox::OutboxSignal;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;

use anyhow::Context;
use platform::config::StoreBackend;

use crate::app::checkout::Checkout;
use crate::app::reconcile;
use crate::app::saga::{self, Saga};
use crate::catalog::{Catalog, ServiceCatalog};
use crate::store::cached::CachedCarts;
use crate::store::dynamodb::DynamoOrderStore;
use crate::store::sqlite::SqliteCartStore;
use crate::store::sqlite::{SqliteOrderStore, SqlitePricingStore};
use crate::store::{CartStore, OrderStore, PricingStore};

/// The service's name.
pub const NAME: &str = "order";

/// The currency carts are priced in.
pub const CURRENCY: &str = "USD";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "carts",
        sql: include_str!("../../../migrations/order/sqlite/0001_carts.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "orders",
        sql: include_str!("../../../migrations/order/sqlite/0002_orders.sql"),
    },
    Migration {
        scope: NAME,
        version: 3,
        name: "cart_abandonment",
        sql: include_str!("../../../migrations/order/sqlite/0003_cart_abandonment.sql"),
    },
    Migration {
        scope: NAME,
        version: 4,
        name: "cart_version",
        sql: include_str!("../../../migrations/order/sqlite/0004_cart_version.sql"),
    },
    Migration {
        scope: NAME,
        version: 5,
        name: "pricing",
        sql: include_str!("../../../migrations/order/sqlite/0005_pricing.sql"),
    },
    Migration {
        scope: NAME,
        version: 6,
        name: "cart_details",
        sql: include_str!("../../../migrations/order/sqlite/0006_cart_details.sql"),
    },
    Migration {
        scope: NAME,
        version: 7,
        name: "order_pricing",
        sql: include_str!("../../../migrations/order/sqlite/0007_order_pricing.sql"),
    },
    Migration {
        scope: NAME,
        version: 8,
        name: "guests_and_refunds",
        sql: include_str!("../../../migrations/order/sqlite/0008_guests_and_refunds.sql"),
    },
];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Carts.
    pub carts: Arc<dyn CartStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// Checkouts.
    pub checkout: Arc<Checkout>,
    /// Moves orders (cancellations, deliveries).
    pub saga: Arc<Saga>,
    /// The catalog (prices) and stock.
    pub catalog: Arc<dyn Catalog>,
    /// Verifies access tokens.
    pub verifier: Arc<TokenVerifier>,
    /// Where shipping labels are kept.
    pub objects: Arc<dyn platform::objects::ObjectStore>,
    /// Shipping zones and promotions.
    pub pricing: Arc<dyn PricingStore>,
    /// The same, read through a short-lived cache (pricing carts).
    pub pricing_cache: Arc<app::pricing::PricingCache>,
    /// Prices carts.
    pub pricer: Arc<app::pricing::Pricer>,
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

/// The stores a process uses, with the outbox their writes record events in, the signal they wake
/// its relay with, and the readiness check of what holds them.
pub struct Backend {
    /// Carts (not yet cached).
    pub carts: Arc<dyn CartStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// Shipping zones and promotions.
    pub pricing: Arc<dyn PricingStore>,
    /// The outbox, for the relay.
    pub outbox: Arc<dyn platform::events::outbox::OutboxStore>,
    /// What the stores wake the outbox relay with after writing events.
    pub signal: OutboxSignal,
    /// The readiness check.
    pub check: Arc<dyn platform::http::ops::ReadinessCheck>,
}

/// Opens the configured stores: SQLite (embedded), or DynamoDB (the local stack and AWS).
pub async fn open(infra: &Infra) -> anyhow::Result<Backend> {
    let signal = OutboxSignal::default();
    match infra.config.store_backend {
        StoreBackend::Sqlite => {
            let db = infra.open_sqlite(NAME, MIGRATIONS)?;
            Ok(Backend {
                carts: Arc::new(SqliteCartStore::new(db.clone()).waking(signal.clone())),
                orders: Arc::new(SqliteOrderStore::new(db.clone()).waking(signal.clone())),
                pricing: Arc::new(SqlitePricingStore::new(db.clone())),
                outbox: Arc::new(platform::events::outbox::SqliteOutbox(db.clone())),
                signal,
                check: Arc::new(db),
            })
        }
        StoreBackend::Dynamodb => {
            let sdk = platform::aws::sdk_config(&infra.config).await;
            let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&sdk), &infra.config.dynamodb_table_prefix)
                .waking(signal.clone());
            // On AWS the tables come from the CDK app; against an emulator (moto, LocalStack) we make them.
            if infra.config.aws_endpoint_url.is_some() {
                store.create_tables().await.context("cannot create the order service's DynamoDB tables")?;
            }
            Ok(Backend {
                outbox: Arc::new(store.outbox()),
                signal,
                carts: Arc::new(store.clone()),
                pricing: Arc::new(store.clone()),
                check: Arc::new(store.readiness()),
                orders: Arc::new(store),
            })
        }
    }
}

/// How long a saga answer (a reservation, a payment) the order service received stays hidden from
/// its other replicas while it is applied: a third of the step timeout `step_ms`, between 1 and
/// 10 s. So an answer taken by a replica that died before it applied it is delivered again while
/// the step it answers still waits, instead of after the sweeper gave the order up; the saga
/// applies an answer once, so one applied twice (a batch slower than this) changes nothing.
pub fn answer_visibility(step_ms: u64) -> std::time::Duration {
    (std::time::Duration::from_millis(step_ms) / 3)
        .clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(10))
}

/// The service's outbox on the stores `infra`'s configuration names (for `shop events parked`).
pub async fn outbox(infra: &Infra) -> anyhow::Result<Arc<dyn platform::events::outbox::OutboxStore>> {
    Ok(open(infra).await?.outbox)
}

/// Wires the service into a process: stores (carts cached), outbox relay, saga consumer,
/// timeout sweeper (which also audits settled orders), dead-end search, abandoned-cart reporter,
/// routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let backend = open(&infra).await?;
    let catalog = ServiceCatalog::new(
        infra.client("product", infra.config.product_url.as_ref()),
        infra.client("inventory", infra.config.inventory_url.as_ref()),
    );
    infra.spawn_relay(backend.outbox, &backend.signal);
    let carts: Arc<dyn CartStore> = Arc::new(CachedCarts::new(backend.carts, infra.cache.clone()));
    let orders = backend.orders;
    let settings: settings::Settings = infra.config.section()?;
    let step = settings.step_timeout();
    let saga = Arc::new(Saga::new(orders.clone(), infra.objects.clone(), step));
    let answers = consumers::SagaAnswers(saga.clone());
    infra.spawn_consumer(
        platform::events::Consumer::new(infra.bus.clone(), consumers::QUEUE, Arc::new(answers))
            .batch(64)
            .visibility(answer_visibility(settings.saga_step_timeout_ms)),
    );
    infra.tasks.spawn(abandoned_carts(
        carts.clone(),
        std::time::Duration::from_secs(settings.cart_abandon_secs),
        infra.shutdown.clone(),
    ));
    infra.tasks.spawn(saga::sweep(
        saga.clone(),
        std::time::Duration::from_millis(settings.reservation_sweep_ms),
        infra.shutdown.clone(),
    ));
    infra.tasks.spawn(reconcile::run(orders.clone(), reconcile::DEAD_END_INTERVAL, infra.shutdown.clone()));
    let catalog: Arc<dyn Catalog> = Arc::new(catalog);
    let pricing_cache = Arc::new(app::pricing::PricingCache::new(backend.pricing.clone()));
    let pricer = Arc::new(app::pricing::Pricer::new(
        pricing_cache.clone(),
        backend.pricing.clone(),
        orders.clone(),
        Arc::new(app::pricing::BuiltInTax),
    ));
    let checkout = Checkout::new(carts.clone(), orders.clone(), catalog.clone(), pricer.clone(), step);
    let state = AppState {
        carts,
        orders,
        checkout: Arc::new(checkout),
        saga,
        catalog,
        verifier: infra.verifier.clone(),
        objects: infra.objects.clone(),
        pricing_cache,
        pricer,
        pricing: backend.pricing,
    };
    Ok(Service {
        name: NAME,
        router: router(state),
        openapi: api::openapi(),
        checks: vec![backend.check],
        not_found_page: None,
    })
}

/// Reports carts left idle for `idle` (`cart.abandoned.v1`, once per idle spell), checking every
/// tenth of that (at most a minute), until shutdown.
async fn abandoned_carts(
    carts: Arc<dyn CartStore>,
    idle: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let every = (idle / 10).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let before = chrono::Utc::now() - chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::days(1));
        match carts.abandon(before, 500).await {
            Ok(0) => {}
            Ok(reported) => tracing::info!(reported, "reported abandoned carts"),
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not look for abandoned carts")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::answer_visibility;

    #[test]
    fn an_answer_comes_back_well_before_the_step_it_answers_times_out() {
        let default = crate::settings::Settings::default().saga_step_timeout_ms;
        assert_eq!(answer_visibility(default), Duration::from_secs(10));
        assert!(answer_visibility(default) * 3 <= Duration::from_millis(default));
        assert_eq!(answer_visibility(platform::contracts::order::MAX_SAGA_STEP_MS), Duration::from_secs(10));
        // SQS counts whole seconds: never less than one.
        assert_eq!(answer_visibility(100), Duration::from_secs(1));
    }
}
