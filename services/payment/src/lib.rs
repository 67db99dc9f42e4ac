//! The payment service: payments through the provider (Stripe, or the simulated provider), the
//! transaction log, refunds and webhooks, and the payment half of the checkout saga. No card data
//! ever reaches it: it holds provider tokens and references only.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and the
//! shop crate serves it as its own process (the `payment-service` binary).

pub mod api;
pub mod app;
pub mod consumers;
pub mod domain;
pub mod provider;
pub mod settings;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use platform::auth::TokenVerifier;
use platform::events::Consumer;
use platform::events::outbox::{OutboxSignal, OutboxStore, SqliteOutbox};
use platform::http::ops::ReadinessCheck;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;
use secrecy::SecretString;

use crate::app::payments::Payments;
use crate::consumers::Commands;
use crate::provider::PaymentProvider;
use crate::provider::simulated::SimulatedProvider;
use crate::provider::stripe::StripeProvider;
use crate::settings::{ProviderChoice, Settings};
use crate::store::PaymentStore;
use crate::store::postgres::PgPaymentStore;
use crate::store::sqlite::SqlitePaymentStore;

/// The service's name.
pub const NAME: &str = "payment";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "webhooks",
        sql: include_str!("../../../migrations/payment/sqlite/0001_webhooks.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "payments",
        sql: include_str!("../../../migrations/payment/sqlite/0002_payments.sql"),
    },
    Migration {
        scope: NAME,
        version: 3,
        name: "payments_by_status",
        sql: include_str!("../../../migrations/payment/sqlite/0003_payments_by_status.sql"),
    },
];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The payment steps (and their store).
    pub payments: Payments,
    /// The Stripe webhook signing secret; `None` refuses every webhook.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Verifies access tokens.
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

/// The store `infra`'s configuration names (PostgreSQL when `SHOP_DATABASE_URL` is set, else the
/// service's SQLite file), waking `signal` after each commit that wrote events, with its outbox
/// and readiness check.
pub async fn open_store(
    infra: &Infra,
    signal: OutboxSignal,
) -> anyhow::Result<(Arc<dyn PaymentStore>, Arc<dyn OutboxStore>, Arc<dyn ReadinessCheck>)> {
    match &infra.config.database_url {
        Some(url) => {
            let pool = platform::postgres::connect(url, 10).await.context("cannot connect to SHOP_DATABASE_URL")?;
            platform::postgres::migrate(&pool, platform::postgres::PLATFORM_MIGRATIONS).await?;
            platform::postgres::migrate(&pool, store::postgres::MIGRATIONS).await?;
            Ok((
                Arc::new(PgPaymentStore::new(pool.clone()).waking(signal)),
                Arc::new(platform::postgres::PgOutbox(pool.clone())),
                Arc::new(platform::postgres::PgReadiness(pool)),
            ))
        }
        None => {
            let db = infra.open_sqlite(NAME, MIGRATIONS)?;
            let store = SqlitePaymentStore::new(db.clone()).waking(signal);
            Ok((Arc::new(store), Arc::new(SqliteOutbox(db.clone())), Arc::new(db)))
        }
    }
}

/// The provider the service's `settings` name.
pub fn provider(config: &Settings) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    Ok(match config.payment_provider {
        ProviderChoice::Simulated => Arc::new(SimulatedProvider::new(
            Duration::from_millis(config.simulated_latency_ms),
            config.simulated_failure_rate,
        )),
        ProviderChoice::Stripe => {
            let key = config.stripe_secret_key.clone().context("SHOP_STRIPE_SECRET_KEY is required")?;
            Arc::new(
                StripeProvider::new(
                    config.stripe_api_base.clone(),
                    key,
                    Duration::from_millis(config.payment_timeout_ms),
                )
                .context("cannot set up the Stripe client")?,
            )
        }
    })
}

/// The service's outbox on the stores `infra`'s configuration names (for `shop events parked`).
pub async fn outbox(infra: &Infra) -> anyhow::Result<Arc<dyn OutboxStore>> {
    Ok(open_store(infra, OutboxSignal::default()).await?.1)
}

/// Wires the service into a process: store, outbox relay, provider, saga command consumer,
/// refund retries, reconciler, routes, checks.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let settings: Settings = infra.config.section()?;
    let signal = OutboxSignal::default();
    let (store, outbox, check) = open_store(&infra, signal.clone()).await?;
    infra.spawn_relay(outbox, &signal);
    let payments = Payments::new(store, provider(&settings)?);
    let commands = Arc::new(Commands::new(payments.clone()));
    infra.spawn_consumer(
        Consumer::new(infra.bus.clone(), consumers::QUEUE, commands).batch(64).visibility(COMMAND_VISIBILITY),
    );
    infra.tasks.spawn(retry_refunds(payments.clone(), infra.shutdown.clone()));
    infra.tasks.spawn(reconcile(payments.clone(), infra.shutdown.clone()));
    let state = AppState {
        payments,
        stripe_webhook_secret: settings.stripe_webhook_secret.clone(),
        verifier: infra.verifier.clone(),
    };
    Ok(Service {
        name: NAME,
        router: router(state),
        openapi: api::openapi(),
        checks: vec![check],
        not_found_page: None,
    })
}

/// How long a received command stays hidden from other replicas. The consumer keeps extending it
/// while the command is at the provider, so this bounds only how soon a command taken by a replica
/// that died comes back: well inside the saga's payment step (60 s by default), so the order is
/// charged late rather than cancelled. A command handled twice changes nothing: each provider call
/// carries the payment's idempotency key.
pub const COMMAND_VISIBILITY: Duration = Duration::from_secs(15);

/// How often (and after how long) refunds the provider has not confirmed are asked for again.
const REFUND_RETRY: Duration = Duration::from_secs(30);

/// Asks the provider again, every [`REFUND_RETRY`], for the refunds it has not confirmed (its
/// answer was lost, or it was down), with their own ids as idempotency keys, until shutdown.
async fn retry_refunds(payments: Payments, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFUND_RETRY) => {}
        }
        let before = chrono::Utc::now() - REFUND_RETRY;
        match payments.retry_pending_refunds(before).await {
            Ok(0) => {}
            Ok(settled) => tracing::info!(settled, "settled refunds the provider had not confirmed"),
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not retry pending refunds")
            }
        }
    }
}

/// Reconciles the payments left waiting with the provider every
/// [`RECONCILE_EVERY`](app::payments::reconcile::RECONCILE_EVERY), until shutdown.
async fn reconcile(payments: Payments, shutdown: tokio_util::sync::CancellationToken) {
    use app::payments::reconcile::{RECONCILE_EVERY, WAITING_LIMIT};
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
        let before = chrono::Utc::now() - WAITING_LIMIT;
        match payments.reconcile_once(before).await {
            Ok(done) if done == Default::default() => {}
            Ok(done) => tracing::info!(repaired = done.repaired, reported = done.reported, "reconciled payments"),
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not reconcile payments")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_of_a_dead_replica_comes_back_while_the_saga_still_waits() {
        // The order service's payment step: twice its default step timeout (30 s).
        let payment_step = Duration::from_secs(2 * 30);
        assert!(COMMAND_VISIBILITY * 3 <= payment_step);
        assert!(COMMAND_VISIBILITY >= Duration::from_secs(1));
    }
}
