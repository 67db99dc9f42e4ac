//! The use-cases that no request or command starts: the sweeper that releases reservations whose
//! time ran out (a checkout abandoned, or a saga that never sent its commit or release), giving
//! their stock back.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::store::{InventoryStore, StoreError};

/// Reservations the sweeper releases per store call.
const SWEEP_BATCH: usize = 100;

/// Releases expired reservations every `interval` until `shutdown`.
pub async fn sweep(store: Arc<dyn InventoryStore>, interval: Duration, shutdown: CancellationToken) {
    loop {
        match sweep_once(store.as_ref()).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "released expired reservations"),
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not release expired reservations; will retry");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Releases every reservation expired by now; how many.
pub async fn sweep_once(store: &dyn InventoryStore) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let expired = store.expire(Utc::now(), SWEEP_BATCH).await?;
        total += expired.len();
        metrics::counter!("inventory_reservations_expired_total").increment(expired.len() as u64);
        if expired.len() < SWEEP_BATCH {
            return Ok(total);
        }
    }
}
