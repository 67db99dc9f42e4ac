//! The inventory's storage port and its adapters ([`sqlite`], [`dynamodb`]).
//!
//! Every write is one transaction with the events it causes (the transactional outbox): the
//! answers of the saga (`inventory.reserved.v1`, `rejected`, `committed`, `released`) and the stock
//! notifications (`inventory.changed.v1` on every change of a SKU, `low_stock` / `restocked` when
//! available units cross the SKU's threshold). Reservations are keyed by order id, so every saga
//! command is idempotent: a command delivered twice finds its work done and changes nothing.

pub mod dynamodb;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::contracts::inventory::Line;
use platform::events::Event;

use crate::domain::{LedgerEntry, Reservation, Stock};

/// A failure of the inventory store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SKU has no stock record.
    #[error("no SKU {0:?}")]
    UnknownSku(String),
    /// The change would leave fewer units on hand than are reserved (or fewer than none).
    #[error("{sku} has {reserved} units reserved for orders; it cannot have {on_hand} on hand")]
    BelowReserved {
        /// The SKU.
        sku: String,
        /// The units on hand the change would leave.
        on_hand: i64,
        /// The units reserved.
        reserved: i64,
    },
    /// The change would leave more units on hand than a SKU may have ([`MAX_ON_HAND`]).
    #[error("{sku} cannot have {on_hand} units on hand (at most {MAX_ON_HAND})")]
    TooMany {
        /// The SKU.
        sku: String,
        /// The units on hand the change would leave.
        on_hand: i64,
    },
    /// The store itself failed.
    #[error("inventory store")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl platform::error::Kinded for StoreError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::UnknownSku(_) => ErrorKind::NotFound,
            Self::BelowReserved { .. } => ErrorKind::Conflict,
            Self::TooMany { .. } => ErrorKind::Invalid { field: "delta" },
            Self::Backend(error) => platform::error::backend_kind(error.as_ref()),
        }
    }
}

impl From<platform::dynamodb::DynamoError> for StoreError {
    fn from(error: platform::dynamodb::DynamoError) -> Self {
        Self::Backend(Box::new(error))
    }
}

impl From<platform::sqlite::DbError> for StoreError {
    fn from(error: platform::sqlite::DbError) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// Most units on hand a SKU may have (a billion: far from overflowing any sum of them).
pub const MAX_ON_HAND: i64 = 1_000_000_000;

/// Whether `sku` may have `on_hand` units with `reserved` of them reserved.
pub fn check_level(sku: &str, on_hand: i64, reserved: i64) -> Result<(), StoreError> {
    if on_hand < reserved || on_hand < 0 {
        return Err(StoreError::BelowReserved { sku: sku.to_owned(), on_hand, reserved });
    }
    if on_hand > MAX_ON_HAND {
        return Err(StoreError::TooMany { sku: sku.to_owned(), on_hand });
    }
    Ok(())
}

/// A saga command's effect on an order's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The reservation after the command.
    pub reservation: Reservation,
    /// Whether this call changed it (`false`: the command was applied before, or does not apply
    /// to the reservation's state).
    pub changed: bool,
}

/// Stock, reservations and the ledger.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// The stock of `sku`, if the SKU is known.
    async fn get(&self, sku: &str) -> Result<Option<Stock>, StoreError>;

    /// The stock of each of `skus` that is known, in their order (the unknown ones left out).
    async fn get_many(&self, skus: &[String]) -> Result<Vec<Stock>, StoreError> {
        let mut found = Vec::with_capacity(skus.len());
        for sku in skus {
            if let Some(stock) = self.get(sku).await? {
                found.push(stock);
            }
        }
        Ok(found)
    }

    /// A page of at most `limit` SKUs, after `after` (the last SKU of the previous page), in the
    /// store's order (SKU order on SQLite, the table's on DynamoDB); only those at or under their
    /// threshold when `low_only`. A page shorter than `limit` is the last.
    async fn list(&self, low_only: bool, after: Option<&str>, limit: usize) -> Result<Vec<Stock>, StoreError>;

    /// Sets the units on hand of `sku` (creating it) and, when given, its threshold. The ledger
    /// records the difference. [`StoreError::BelowReserved`] when fewer than are reserved,
    /// [`StoreError::TooMany`] above [`MAX_ON_HAND`].
    async fn set(
        &self,
        sku: &str,
        on_hand: i64,
        low_stock_threshold: Option<i64>,
        reason: &str,
        actor: &str,
    ) -> Result<Stock, StoreError>;

    /// Sets the units on hand of many SKUs (an initial load: the seeder, an import), as
    /// [`set`](Self::set) does for each.
    async fn set_many(&self, levels: &[(String, i64)], reason: &str, actor: &str) -> Result<(), StoreError> {
        for (sku, on_hand) in levels {
            self.set(sku, *on_hand, None, reason, actor).await?;
        }
        Ok(())
    }

    /// Adds `delta` units on hand (negative: removes) with a reason for the ledger.
    /// [`StoreError::UnknownSku`] for a SKU never set; [`StoreError::BelowReserved`] when it would
    /// leave fewer than are reserved; [`StoreError::TooMany`] above [`MAX_ON_HAND`].
    async fn adjust(&self, sku: &str, delta: i64, reason: &str, actor: &str) -> Result<Stock, StoreError>;

    /// The ledger of `sku`, newest first, entries before `before` (a `seq`), at most `limit`.
    async fn ledger(&self, sku: &str, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>, StoreError>;

    /// The reservation of `order_id`.
    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError>;

    /// Holds every one of `lines` (checked and merged: see
    /// [`normalize_lines`](crate::domain::normalize_lines)) for `order_id` until `expires_at`, or
    /// none of them when any is short (the reservation is then `rejected`, naming the short SKUs).
    /// An order that has a reservation already (in any state) keeps it unchanged.
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[Line],
        expires_at: DateTime<Utc>,
        cause: Option<&Event>,
    ) -> Result<Outcome, StoreError>;

    /// Moves a held reservation's units out of stock (`committed`). `None` when the order has no
    /// reservation; unchanged when it is not held.
    async fn commit(&self, order_id: &str, cause: Option<&Event>) -> Result<Option<Outcome>, StoreError>;

    /// Gives an order's units back: a held reservation's become available (`released`), a committed
    /// one's go back on hand (`returned`). An order with no reservation gets a `released` one with
    /// no lines, so a reserve arriving later holds nothing. Unchanged in any other state.
    async fn release(&self, order_id: &str, reason: &str, cause: Option<&Event>) -> Result<Outcome, StoreError>;

    /// Releases up to `limit` held reservations that expired by `now`, each exactly once (a
    /// reservation committed or released meanwhile is left alone); the ones it released.
    async fn expire(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Reservation>, StoreError>;
}
