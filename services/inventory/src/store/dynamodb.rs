//! The DynamoDB inventory store.
//!
//! Tables (all on-demand, named `{prefix}…`; [`DynamoInventoryStore::create_tables`] makes them):
//!
//! | table | key | items |
//! |---|---|---|
//! | `inventory-stock` | `SKU` (S) | `OnHand`, `Reserved`, `Available` (= `OnHand − Reserved`, kept so conditions can test it), `LowStockThreshold`, `Version`, `UpdatedAt` |
//! | `inventory-reservations` | `OrderID` (S) | `Status`, `Lines` and `Short` (JSON), `ReleaseReason`, `ExpiresAt`, `CreatedAt`, `UpdatedAt`; `HeldShard` only while held |
//! | `inventory-ledger` | `SKU` (S), `Seq` (N) | `Delta`, `Kind`, `Reason`, `Reference`, `At` |
//! | `inventory-outbox` | `Service` (S), `Seq` (N) | one per transaction: its events (`Body`) |
//!
//! The reservations table has a sparse global secondary index `held-by-expiry` (`HeldShard`,
//! `ExpiresAt`): only held reservations carry `HeldShard` (a hash of the order id modulo
//! [`HELD_SHARDS`], spreading writes over that many index partitions), so the expiry sweeper finds
//! the ones due with one `Query` per shard.
//!
//! **No oversell.** A reservation is one `TransactWriteItems`: the reservation (conditional on the
//! order having none) and, per line, `Available − q`, `Reserved + q` under the condition
//! `Available BETWEEN lo AND hi` with `lo ≥ q`. So no interleaving of writers can take a SKU's
//! `Available` below zero: DynamoDB checks every condition and applies every item atomically.
//!
//! **Threshold events in the same transaction.** `lo` and `hi` also pin which side of the SKU's
//! low-stock threshold the level is on before and after the change (as read just before,
//! strongly consistent; the threshold itself is in the condition). So whether the change crosses
//! the threshold is known when the transaction is built, and the `low_stock` / `restocked` event
//! goes into the outbox with it. A writer whose read went stale loses the condition and retries
//! from a fresh read; the bands are wide, so concurrent reservations of a SKU rarely collide.
//!
//! **`changed` events.** A transaction does not return the values it wrote, and pinning the exact
//! level would make every concurrent reservation of a SKU collide. So a transaction's outbox item
//! carries its `inventory.changed.v1` events with the SKU only, and [`StockOutbox`] (the relay's
//! view of the outbox) fills in the SKU's stock, read strongly consistent, as it publishes: each
//! event carries the stock at or after its change, with the SKU's `Version`.
//!
//! Admin writes (set, adjust) are conditional on the SKU's `Version` as read, and so exact; they
//! retry when a reservation got in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, ScalarAttributeType, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use platform::contracts::inventory::Line;
use platform::dynamodb::{
    self, Attempt, Attrs, Committed, DynamoError, DynamoOutbox, Item, TableSpec, Transaction, n, next_seq, race_only,
    retrying, s, transact,
};
use platform::events::outbox::{OutboxSignal, OutboxStore};
use platform::events::{BusError, Event};
use serde::{Deserialize, Serialize};

use super::{InventoryStore, Outcome, StoreError, check_level};
use crate::domain::{
    Crossing, EXPIRED, LedgerEntry, LedgerKind, Reservation, ReservationStatus, Stock, caused, changed_event,
    normalize_lines, reservation_event, shortages, stamp, stock_events,
};

/// Shards of the `held-by-expiry` index.
pub const HELD_SHARDS: u64 = 16;

/// Tries of a saga write that keeps losing races. Reservations of a popular SKU race each other,
/// so they get more tries than the platform's default.
const MAX_ATTEMPTS: u32 = 16;

/// Admin writes in flight at once during [`InventoryStore::set_many`].
const WRITE_CONCURRENCY: usize = 16;

/// The `Service` key of this service's outbox items.
const OUTBOX_SERVICE: &str = crate::NAME;

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

fn sdk(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    DynamoError::sdk(error).into()
}

/// The table names of one deployment.
#[derive(Debug)]
struct Tables {
    stock: String,
    reservations: String,
    ledger: String,
    outbox: String,
}

/// The inventory in DynamoDB (see the module documentation for the design).
#[derive(Debug, Clone)]
pub struct DynamoInventoryStore {
    client: Client,
    tables: Arc<Tables>,
    signal: OutboxSignal,
}

/// The `held-by-expiry` shard of an order id.
pub fn held_shard(order_id: &str) -> u64 {
    dynamodb::shard_of(order_id, HELD_SHARDS)
}

/// The bounds `Available` must be within for a change of `delta` to keep it non-negative and to
/// cross (or not) the threshold as the level `available` read says; and that crossing.
fn band(available: i64, threshold: i64, delta: i64) -> (i64, i64, Option<Crossing>) {
    if delta == 0 {
        // The level does not move (a commit): nothing to pin.
        return (0, i64::MAX, None);
    }
    let (was_low, is_low) = (available <= threshold, available + delta <= threshold);
    let mut lo = (-delta).max(0);
    let mut hi = i64::MAX;
    if was_low {
        hi = hi.min(threshold);
    } else {
        lo = lo.max(threshold + 1);
    }
    if is_low {
        hi = hi.min(threshold - delta);
    } else {
        lo = lo.max(threshold - delta + 1);
    }
    (lo, hi, Crossing::between(was_low, is_low))
}

/// What one transaction item is, to read its cancellation reason.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Reservation,
    Stock,
    Other,
}

/// Where a saga write moves a reservation.
#[derive(Debug, Clone, Copy)]
enum Move<'a> {
    /// Held → committed.
    Commit,
    /// Held → released, committed → returned, with this reason.
    Release(&'a str),
    /// Held and expired by this time → released (`expired`); nothing else.
    Expire(DateTime<Utc>),
}

/// One transaction's events, as one outbox item.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OutboxDoc {
    /// Events as they are.
    events: Vec<Event>,
    /// `inventory.changed.v1` events whose data is only `{"sku": …}`, filled in when published.
    changed: Vec<Event>,
}

impl OutboxDoc {
    fn touch(&mut self, sku: &str, cause: Option<&Event>) {
        let mut event = changed_event(&Stock::empty(sku));
        event.data = serde_json::json!({ "sku": sku });
        self.changed.push(caused(event, cause));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a reservation request that does not normalize: {0}")]
struct BadLines(#[from] crate::domain::LinesError);

impl DynamoInventoryStore {
    /// The store's readiness check (`/ready`).
    pub fn readiness(&self) -> dynamodb::TableCheck {
        dynamodb::TableCheck::new(self.client.clone(), self.tables.stock.clone())
    }

    /// A store on the tables named `{prefix}inventory-stock`, `{prefix}inventory-reservations`,
    /// `{prefix}inventory-ledger` and `{prefix}inventory-outbox`.
    pub fn new(client: Client, prefix: &str) -> Self {
        let tables = Tables {
            stock: format!("{prefix}inventory-stock"),
            reservations: format!("{prefix}inventory-reservations"),
            ledger: format!("{prefix}inventory-ledger"),
            outbox: format!("{prefix}inventory-outbox"),
        };
        Self { client, tables: Arc::new(tables), signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each write, as every write records
    /// events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }

    /// The outbox as the relay reads it: `changed` events filled in with the stock.
    pub fn outbox(&self) -> StockOutbox {
        StockOutbox {
            inner: self.outbox_writer(),
            store: self.clone(),
            fetched: Mutex::new(HashMap::new()),
            settled: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the tables (on-demand capacity) with their index and waits until they are active.
    /// Tables that exist already are left as they are.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        use ScalarAttributeType::{N, S};
        let t = &self.tables;
        let specs = [
            TableSpec { name: &t.stock, key: &[("SKU", S)], indexes: &[] },
            TableSpec {
                name: &t.reservations,
                key: &[("OrderID", S)],
                indexes: &[("held-by-expiry", [("HeldShard", N), ("ExpiresAt", N)])],
            },
            TableSpec { name: &t.ledger, key: &[("SKU", S), ("Seq", N)], indexes: &[] },
            dynamodb::outbox_table(&t.outbox),
        ];
        Ok(dynamodb::create_tables(&self.client, &specs).await?)
    }

    fn outbox_put(&self, doc: &OutboxDoc) -> Result<TransactWriteItem, StoreError> {
        let body = serde_json::to_string(doc).expect("events serialize");
        // The shard follows what the transaction was about (its order, else its first SKU).
        let key = doc.events.iter().chain(&doc.changed).find_map(|e| e.subject.as_deref()).unwrap_or_default();
        Ok(self.outbox_writer().put_body(key, None, body)?)
    }

    fn outbox_writer(&self) -> DynamoOutbox {
        DynamoOutbox::new(self.client.clone(), self.tables.outbox.clone(), OUTBOX_SERVICE)
    }

    fn ledger_put(
        &self,
        sku: &str,
        delta: i64,
        kind: LedgerKind,
        reason: &str,
        reference: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.ledger)
            .item("SKU", s(sku))
            .item("Seq", n(next_seq()))
            .item("Delta", n(delta))
            .item("Kind", s(kind.as_str()))
            .item("Reason", s(reason))
            .item("Reference", s(reference))
            .item("At", n(Utc::now().timestamp_millis()))
            .condition_expression("attribute_not_exists(Seq)")
            .build()
            .map_err(sdk)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The stock of `skus`, strongly consistent; SKUs never set are absent.
    async fn stocks(&self, skus: &[&str]) -> Result<HashMap<String, Stock>, StoreError> {
        let mut found = HashMap::with_capacity(skus.len());
        for item in dynamodb::batch_get(&self.client, &self.tables.stock, "SKU", skus).await? {
            let stock = self.stock_from(&item)?;
            found.insert(stock.sku.clone(), stock);
        }
        Ok(found)
    }

    fn stock_from(&self, item: &Item) -> Result<Stock, StoreError> {
        let attrs = Attrs::new(&self.tables.stock, item);
        Ok(Stock {
            sku: attrs.s("SKU")?.to_owned(),
            on_hand: attrs.n("OnHand")?,
            reserved: attrs.n("Reserved")?,
            low_stock_threshold: attrs.n("LowStockThreshold")?,
            version: attrs.n("Version")?,
        })
    }

    fn reservation_from(&self, item: &Item) -> Result<Reservation, StoreError> {
        let attrs = Attrs::new(&self.tables.reservations, item);
        let time = |name: &'static str| -> Result<DateTime<Utc>, StoreError> {
            DateTime::from_timestamp_millis(attrs.n(name)?).ok_or_else(|| attrs.malformed(name).into())
        };
        Ok(Reservation {
            order_id: attrs.s("OrderID")?.to_owned(),
            status: ReservationStatus::parse(attrs.s("Status")?).ok_or_else(|| attrs.malformed("Status"))?,
            lines: attrs.json("Lines")?,
            short: attrs.json("Short")?,
            release_reason: attrs.opt_s("ReleaseReason").map(Into::into),
            expires_at: time("ExpiresAt")?,
            created_at: time("CreatedAt")?,
            updated_at: time("UpdatedAt")?,
        })
    }

    async fn read_reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.reservations)
            .key("OrderID", s(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        found.item.as_ref().map(|item| self.reservation_from(item)).transpose()
    }

    fn reservation_put(&self, reservation: &Reservation) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.tables.reservations)
            .item("OrderID", s(&reservation.order_id))
            .item("Status", s(reservation.status.as_str()))
            .item("Lines", s(serde_json::to_string(&reservation.lines).expect("lines serialize")))
            .item("Short", s(serde_json::to_string(&reservation.short).expect("shortages serialize")))
            .item("ExpiresAt", n(reservation.expires_at.timestamp_millis()))
            .item("CreatedAt", n(reservation.created_at.timestamp_millis()))
            .item("UpdatedAt", n(reservation.updated_at.timestamp_millis()))
            .condition_expression("attribute_not_exists(OrderID)");
        if reservation.status == ReservationStatus::Held {
            put = put.item("HeldShard", n(held_shard(&reservation.order_id) as i64));
        }
        if let Some(reason) = &reservation.release_reason {
            put = put.item("ReleaseReason", s(reason));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk)?).build())
    }

    /// Moves the reservation from its status to `to`, conditional on the status.
    fn reservation_move(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.reservations)
            .key("OrderID", s(&reservation.order_id))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "Status")
            .expression_attribute_values(":from", s(reservation.status.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(now.timestamp_millis()));
        let mut set = "SET #status = :to, UpdatedAt = :now".to_owned();
        if let Some(reason) = reason {
            set.push_str(", ReleaseReason = :reason");
            update = update.expression_attribute_values(":reason", s(reason));
        }
        let expression = if to == ReservationStatus::Held { set } else { format!("{set} REMOVE HeldShard") };
        let update = update.update_expression(expression).build().map_err(sdk)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The update of `stock` by `on_hand` and `available` deltas (`reserved` follows), conditional
    /// on the level being in the band that makes the crossing the one returned.
    fn stock_move(
        &self,
        stock: &Stock,
        on_hand: i64,
        available: i64,
    ) -> Result<(TransactWriteItem, Option<Crossing>), StoreError> {
        let reserved = on_hand - available;
        let (lo, hi, crossing) = band(stock.available(), stock.low_stock_threshold, available);
        let update = Update::builder()
            .table_name(&self.tables.stock)
            .key("SKU", s(&stock.sku))
            .update_expression(
                "SET OnHand = OnHand + :on_hand, Reserved = Reserved + :reserved, Available = Available + :available, \
                 Version = Version + :one, UpdatedAt = :now",
            )
            .condition_expression(
                "LowStockThreshold = :threshold AND Available BETWEEN :lo AND :hi AND Reserved >= :unreserve \
                 AND OnHand >= :remove",
            )
            .expression_attribute_values(":on_hand", n(on_hand))
            .expression_attribute_values(":reserved", n(reserved))
            .expression_attribute_values(":available", n(available))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
            .expression_attribute_values(":threshold", n(stock.low_stock_threshold))
            .expression_attribute_values(":lo", n(lo))
            .expression_attribute_values(":hi", n(hi))
            .expression_attribute_values(":unreserve", n((-reserved).max(0)))
            .expression_attribute_values(":remove", n((-on_hand).max(0)))
            .build()
            .map_err(sdk)?;
        Ok((TransactWriteItem::builder().update(update).build(), crossing))
    }

    /// Runs `tx` (every write of this store carries an outbox item): `Done(())` when applied,
    /// waking the relay, `Retry` when it lost a race, the reservation's condition failing included
    /// (the caller re-reads it).
    async fn run(&self, tx: Transaction<Role>) -> Result<Attempt<()>, StoreError> {
        match transact(&self.client, tx).await? {
            Committed::Yes => {
                self.signal.wake();
                Ok(Attempt::Done(()))
            }
            Committed::No(reasons) => {
                race_only(reasons.iter().map(|(_, reason)| reason))?;
                Ok(Attempt::Retry)
            }
        }
    }

    async fn try_reserve(
        &self,
        order_id: &str,
        lines: &[Line],
        expires_at: DateTime<Utc>,
        cause: Option<&Event>,
    ) -> Result<Attempt<Outcome>, StoreError> {
        if let Some(reservation) = self.read_reservation(order_id).await? {
            return Ok(Attempt::Done(Outcome { reservation, changed: false }));
        }
        let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
        let stock = self.stocks(&skus).await?;
        let short = shortages(lines, |sku| stock.get(sku));
        let now = stamp(Utc::now());
        let status = if short.is_empty() { ReservationStatus::Held } else { ReservationStatus::Rejected };
        let reservation = Reservation {
            order_id: order_id.to_owned(),
            status,
            lines: lines.to_vec(),
            short,
            release_reason: None,
            expires_at: stamp(expires_at),
            created_at: now,
            updated_at: now,
        };
        let mut tx = Transaction::default();
        let mut doc = OutboxDoc::default();
        tx.push(Role::Reservation, self.reservation_put(&reservation)?);
        if status == ReservationStatus::Held {
            for line in lines {
                let (update, crossing) = self.stock_move(&stock[&line.sku], 0, -line.quantity)?;
                tx.push(Role::Stock, update);
                doc.touch(&line.sku, cause);
                if let Some(crossing) = crossing {
                    doc.events.push(caused(crossing.event(&line.sku, stock[&line.sku].low_stock_threshold), cause));
                }
            }
        }
        doc.events.insert(0, caused(reservation_event(&reservation), cause));
        tx.push(Role::Other, self.outbox_put(&doc)?);
        Ok(match self.run(tx).await? {
            Attempt::Done(()) => Attempt::Done(Outcome { reservation, changed: true }),
            Attempt::Retry => Attempt::Retry,
        })
    }

    /// One try of moving the reservation of `order_id` on (see [`Move`]); unchanged when its
    /// status (read strongly consistent) is not one the move applies to.
    async fn try_move(
        &self,
        order_id: &str,
        to: Move<'_>,
        cause: Option<&Event>,
    ) -> Result<Attempt<Option<Outcome>>, StoreError> {
        let Some(mut reservation) = self.read_reservation(order_id).await? else { return Ok(Attempt::Done(None)) };
        let (to, kind, release_reason) = match (to, reservation.status) {
            (Move::Commit, ReservationStatus::Held) => (ReservationStatus::Committed, Some(LedgerKind::Sale), None),
            (Move::Release(reason), ReservationStatus::Held) => (ReservationStatus::Released, None, Some(reason)),
            (Move::Release(reason), ReservationStatus::Committed) => {
                (ReservationStatus::Returned, Some(LedgerKind::Return), Some(reason))
            }
            (Move::Expire(now), ReservationStatus::Held) if reservation.expires_at <= now => {
                (ReservationStatus::Released, None, Some(EXPIRED))
            }
            _ => return Ok(Attempt::Done(Some(Outcome { reservation, changed: false }))),
        };
        let skus: Vec<&str> = reservation.lines.iter().map(|l| l.sku.as_str()).collect();
        let stock = self.stocks(&skus).await?;
        let now = stamp(Utc::now());
        let mut tx = Transaction::default();
        let mut doc = OutboxDoc::default();
        tx.push(Role::Reservation, self.reservation_move(&reservation, to, release_reason, now)?);
        for line in &reservation.lines {
            let Some(level) = stock.get(&line.sku) else {
                return Err(backend(DynamoError::Malformed { table: self.tables.stock.clone(), attribute: "SKU" }));
            };
            let q = line.quantity;
            let (on_hand, available) = match to {
                ReservationStatus::Committed => (-q, 0),
                ReservationStatus::Released => (0, q),
                _ => (q, q),
            };
            let (update, crossing) = self.stock_move(level, on_hand, available)?;
            tx.push(Role::Stock, update);
            if let Some(kind) = kind {
                let reason = release_reason.unwrap_or("order confirmed");
                tx.push(Role::Other, self.ledger_put(&line.sku, on_hand, kind, reason, order_id)?);
            }
            doc.touch(&line.sku, cause);
            if let Some(crossing) = crossing {
                doc.events.push(caused(crossing.event(&line.sku, level.low_stock_threshold), cause));
            }
        }
        reservation.status = to;
        reservation.updated_at = now;
        if let Some(reason) = release_reason {
            reservation.release_reason = Some(reason.to_owned());
        }
        doc.events.insert(0, caused(reservation_event(&reservation), cause));
        tx.push(Role::Other, self.outbox_put(&doc)?);
        Ok(match self.run(tx).await? {
            Attempt::Done(()) => Attempt::Done(Some(Outcome { reservation, changed: true })),
            Attempt::Retry => Attempt::Retry,
        })
    }

    /// Records a release of an order that has no reservation; `None` when one appeared meanwhile.
    async fn try_tombstone(
        &self,
        order_id: &str,
        reason: &str,
        cause: Option<&Event>,
    ) -> Result<Option<Reservation>, StoreError> {
        let now = stamp(Utc::now());
        let reservation = Reservation {
            order_id: order_id.to_owned(),
            status: ReservationStatus::Released,
            lines: Vec::new(),
            short: Vec::new(),
            release_reason: Some(reason.to_owned()),
            expires_at: now,
            created_at: now,
            updated_at: now,
        };
        let mut tx = Transaction::default();
        tx.push(Role::Reservation, self.reservation_put(&reservation)?);
        let doc = OutboxDoc { events: vec![caused(reservation_event(&reservation), cause)], changed: Vec::new() };
        tx.push(Role::Other, self.outbox_put(&doc)?);
        Ok(match self.run(tx).await? {
            Attempt::Done(()) => Some(reservation),
            Attempt::Retry => None,
        })
    }

    /// One try of setting `sku` to `on_hand` (`delta` of the current when `adjust`).
    async fn try_set(
        &self,
        sku: &str,
        level: Level,
        threshold: Option<i64>,
        kind: LedgerKind,
        reason: &str,
        actor: &str,
    ) -> Result<Attempt<Stock>, StoreError> {
        let before = self.stocks(&[sku]).await?.remove(sku);
        let on_hand = match (level, &before) {
            (Level::To(on_hand), _) => on_hand,
            (Level::By(delta), Some(before)) => before.on_hand.saturating_add(delta),
            (Level::By(_), None) => return Err(StoreError::UnknownSku(sku.to_owned())),
        };
        check_level(sku, on_hand, before.as_ref().map_or(0, |s| s.reserved))?;
        let reserved = before.as_ref().map_or(0, |s| s.reserved);
        let after = Stock {
            sku: sku.to_owned(),
            on_hand,
            reserved,
            low_stock_threshold: threshold.or(before.as_ref().map(|s| s.low_stock_threshold)).unwrap_or(0),
            version: before.as_ref().map_or(1, |s| s.version + 1),
        };
        let mut put = Put::builder()
            .table_name(&self.tables.stock)
            .item("SKU", s(sku))
            .item("OnHand", n(after.on_hand))
            .item("Reserved", n(after.reserved))
            .item("Available", n(after.available()))
            .item("LowStockThreshold", n(after.low_stock_threshold))
            .item("Version", n(after.version))
            .item("UpdatedAt", n(Utc::now().timestamp_millis()));
        put = match &before {
            None => put.condition_expression("attribute_not_exists(SKU)"),
            Some(before) => put
                .condition_expression("Version = :version")
                .expression_attribute_values(":version", n(before.version)),
        };
        let mut tx = Transaction::default();
        tx.push(Role::Stock, TransactWriteItem::builder().put(put.build().map_err(sdk)?).build());
        let delta = after.on_hand - before.as_ref().map_or(0, |s| s.on_hand);
        if delta != 0 {
            tx.push(Role::Other, self.ledger_put(sku, delta, kind, reason, actor)?);
        }
        // The admin write is exact: its `changed` event carries the values written.
        let doc = OutboxDoc { events: stock_events(before.as_ref(), &after), changed: Vec::new() };
        tx.push(Role::Other, self.outbox_put(&doc)?);
        Ok(match self.run(tx).await? {
            Attempt::Done(()) => Attempt::Done(after),
            Attempt::Retry => Attempt::Retry,
        })
    }

    async fn set_level(
        &self,
        sku: &str,
        level: Level,
        threshold: Option<i64>,
        kind: LedgerKind,
        reason: &str,
        actor: &str,
    ) -> Result<Stock, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_set(sku, level, threshold, kind, reason, actor)).await
    }

    async fn move_reservation(
        &self,
        order_id: &str,
        to: Move<'_>,
        cause: Option<&Event>,
    ) -> Result<Option<Outcome>, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_move(order_id, to, cause)).await
    }

    /// The sweeper's step for one order: releases its reservation if it is held and expired by
    /// `now` (read strongly consistent, so a reservation committed or released since the index
    /// listed it is left alone); the reservation it released.
    pub async fn expire_order(&self, order_id: &str, now: DateTime<Utc>) -> Result<Option<Reservation>, StoreError> {
        Ok(match self.move_reservation(order_id, Move::Expire(now), None).await? {
            Some(Outcome { reservation, changed: true }) => Some(reservation),
            _ => None,
        })
    }
}

/// What an admin write sets the units on hand to.
#[derive(Debug, Clone, Copy)]
enum Level {
    To(i64),
    By(i64),
}

#[async_trait]
impl InventoryStore for DynamoInventoryStore {
    async fn get(&self, sku: &str) -> Result<Option<Stock>, StoreError> {
        Ok(self.stocks(&[sku]).await?.remove(sku))
    }

    /// A `Scan` (with the low-stock test as a filter): SKUs come in the table's order, and a page
    /// goes on after the last SKU of the previous one.
    async fn list(&self, low_only: bool, after: Option<&str>, limit: usize) -> Result<Vec<Stock>, StoreError> {
        let mut page = Vec::with_capacity(limit.min(1000));
        let mut start = after.map(|sku| HashMap::from([("SKU".to_owned(), s(sku))]));
        while page.len() < limit {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.tables.stock)
                .consistent_read(true)
                .limit((limit - page.len()).clamp(1, 1000) as i32)
                .set_exclusive_start_key(start);
            if low_only {
                scan = scan.filter_expression("Available <= LowStockThreshold");
            }
            let out = scan.send().await.map_err(sdk)?;
            for item in out.items() {
                page.push(self.stock_from(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        page.truncate(limit);
        Ok(page)
    }

    async fn set(
        &self,
        sku: &str,
        on_hand: i64,
        low_stock_threshold: Option<i64>,
        reason: &str,
        actor: &str,
    ) -> Result<Stock, StoreError> {
        self.set_level(sku, Level::To(on_hand), low_stock_threshold, LedgerKind::Set, reason, actor).await
    }

    /// Up to [`WRITE_CONCURRENCY`] SKUs at once, each its own transaction.
    async fn set_many(&self, levels: &[(String, i64)], reason: &str, actor: &str) -> Result<(), StoreError> {
        let writes: Vec<_> = levels.iter().map(|(sku, on_hand)| self.set(sku, *on_hand, None, reason, actor)).collect();
        let mut writes = futures::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY);
        while let Some(written) = writes.next().await {
            written?;
        }
        Ok(())
    }

    async fn adjust(&self, sku: &str, delta: i64, reason: &str, actor: &str) -> Result<Stock, StoreError> {
        self.set_level(sku, Level::By(delta), None, LedgerKind::Adjust, reason, actor).await
    }

    async fn ledger(&self, sku: &str, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.ledger)
            .key_condition_expression("SKU = :sku AND Seq < :before")
            .expression_attribute_values(":sku", s(sku))
            .expression_attribute_values(":before", n(before.unwrap_or(i64::MAX)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(sdk)?;
        out.items()
            .iter()
            .map(|item| {
                let attrs = Attrs::new(&self.tables.ledger, item);
                Ok(LedgerEntry {
                    seq: attrs.n("Seq")?,
                    sku: attrs.s("SKU")?.to_owned(),
                    delta: attrs.n("Delta")?,
                    kind: LedgerKind::parse(attrs.s("Kind")?).ok_or_else(|| attrs.malformed("Kind"))?,
                    reason: attrs.s("Reason")?.to_owned(),
                    reference: attrs.s("Reference")?.to_owned(),
                    at: DateTime::from_timestamp_millis(attrs.n("At")?).ok_or_else(|| attrs.malformed("At"))?,
                })
            })
            .collect()
    }

    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        self.read_reservation(order_id).await
    }

    async fn reserve(
        &self,
        order_id: &str,
        lines: &[Line],
        expires_at: DateTime<Utc>,
        cause: Option<&Event>,
    ) -> Result<Outcome, StoreError> {
        let lines = normalize_lines(lines).map_err(|e| backend(BadLines(e)))?;
        retrying(MAX_ATTEMPTS, || self.try_reserve(order_id, &lines, expires_at, cause)).await
    }

    async fn commit(&self, order_id: &str, cause: Option<&Event>) -> Result<Option<Outcome>, StoreError> {
        self.move_reservation(order_id, Move::Commit, cause).await
    }

    async fn release(&self, order_id: &str, reason: &str, cause: Option<&Event>) -> Result<Outcome, StoreError> {
        retrying(MAX_ATTEMPTS, || async move {
            if let Some(outcome) = self.move_reservation(order_id, Move::Release(reason), cause).await? {
                return Ok(Attempt::Done(outcome));
            }
            // No reservation: remember the release, unless a reserve made one meanwhile.
            Ok(match self.try_tombstone(order_id, reason, cause).await? {
                Some(reservation) => Attempt::Done(Outcome { reservation, changed: true }),
                None => Attempt::Retry,
            })
        })
        .await
    }

    /// Queries every shard of `held-by-expiry` (eventually consistent: a reservation it lists may
    /// have moved on since, and [`DynamoInventoryStore::expire_order`] then leaves it alone). A
    /// reservation that cannot be released now is logged and left for the next sweep.
    async fn expire(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Reservation>, StoreError> {
        let mut due = Vec::new();
        for shard in 0..HELD_SHARDS {
            if due.len() >= limit {
                break;
            }
            let out = self
                .client
                .query()
                .table_name(&self.tables.reservations)
                .index_name("held-by-expiry")
                .key_condition_expression("HeldShard = :shard AND ExpiresAt <= :now")
                .expression_attribute_values(":shard", n(shard as i64))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .limit((limit - due.len()).clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(sdk)?;
            for item in out.items() {
                due.push(Attrs::new(&self.tables.reservations, item).s("OrderID")?.to_owned());
            }
        }
        let mut expired = Vec::new();
        for order_id in due {
            match self.expire_order(&order_id, now).await {
                Ok(Some(reservation)) => expired.push(reservation),
                Ok(None) => {}
                Err(error) => tracing::warn!(order_id, error = %platform::error::cause_chain(&error),
                    "could not release an expired reservation; the next sweep tries again"),
            }
        }
        Ok(expired)
    }
}

/// Per event handed to the relay: the item it came from, and how many events that item made.
type Fetched = HashMap<i64, (i64, usize)>;

/// The inventory's outbox as the relay reads it: each item (one transaction's events) becomes its
/// events, with the `changed` ones filled in with the SKU's stock read now. The relay's sequence
/// numbers are per event; an item is deleted once all its events are published (or parked).
pub struct StockOutbox {
    inner: DynamoOutbox,
    store: DynamoInventoryStore,
    /// Per partition, per event handed to the relay: the item it came from, and how many events
    /// that item made (partitions are drained side by side, each fetch then delete in turn).
    fetched: Mutex<HashMap<u32, Fetched>>,
    /// Per partition, events of the last fetch the relay parked: settled like published ones.
    settled: Mutex<HashMap<u32, Vec<i64>>>,
}

impl StockOutbox {
    fn expand(body: &str) -> Result<OutboxDoc, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[async_trait]
impl OutboxStore for StockOutbox {
    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }

    async fn lease(&self, partition: u32, owner: &str, ttl: std::time::Duration) -> Result<bool, BusError> {
        self.inner.lease(partition, owner, ttl).await
    }

    async fn release(&self, partition: u32, owner: &str) -> Result<(), BusError> {
        self.inner.release(partition, owner).await
    }

    async fn waiting(&self, partition: u32) -> Result<bool, BusError> {
        self.inner.waiting(partition).await
    }

    async fn fetch(&self, partition: u32, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
        let items = self.inner.fetch(partition, limit.div_ceil(4).max(1)).await?;
        let mut docs = Vec::with_capacity(items.len());
        for (seq, body) in items {
            match Self::expand(&body) {
                Ok(doc) => docs.push((seq, doc)),
                Err(error) => {
                    // Only this adapter writes the outbox; a bad item is a bug, kept out of the way.
                    tracing::error!(outbox.seq = seq, %error, "parking an inventory outbox item that does not parse");
                    self.inner.park(partition, seq, &body, &format!("not an outbox item: {error}")).await?;
                }
            }
        }
        let mut skus: Vec<&str> =
            docs.iter().flat_map(|(_, doc)| doc.changed.iter()).filter_map(|event| event.subject.as_deref()).collect();
        skus.sort_unstable();
        skus.dedup();
        let stock = self.store.stocks(&skus).await.map_err(|e| BusError::Outbox(Box::new(e)))?;
        let mut rows = Vec::new();
        let mut fetched = HashMap::new();
        for (seq, doc) in &docs {
            // A template whose SKU has no stock row (never the case: SKUs are not deleted) is
            // dropped rather than left to hold its item in the outbox forever.
            let changed = doc.changed.iter().filter_map(|template| {
                let level = stock.get(template.subject.as_deref()?)?;
                let mut event = template.clone();
                event.data = changed_event(level).data;
                Some(event)
            });
            let events: Vec<Event> = doc.events.iter().cloned().chain(changed).collect();
            let count = events.len();
            for event in events {
                let id = rows.len() as i64;
                fetched.insert(id, (*seq, count));
                rows.push((id, event.to_json()));
            }
            if count == 0 {
                self.inner.delete(partition, &[*seq]).await?;
            }
        }
        self.fetched.lock().unwrap_or_else(|e| e.into_inner()).insert(partition, fetched);
        self.settled.lock().unwrap_or_else(|e| e.into_inner()).remove(&partition);
        Ok(rows)
    }

    async fn delete(&self, partition: u32, seqs: &[i64]) -> Result<(), BusError> {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner()).remove(&partition).unwrap_or_default();
        settled.extend_from_slice(seqs);
        let done = {
            let fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
            fetched.get(&partition).map(|fetched| complete_items(fetched, &settled)).unwrap_or_default()
        };
        self.inner.delete(partition, &done).await
    }

    async fn park(&self, partition: u32, seq: i64, body: &str, reason: &str) -> Result<(), BusError> {
        // The event is one of its item's: recorded as parked, and its item completes without it.
        self.inner.record_parked(body, reason).await?;
        self.settled.lock().unwrap_or_else(|e| e.into_inner()).entry(partition).or_default().push(seq);
        Ok(())
    }

    async fn parked(&self, limit: usize) -> Result<Vec<platform::events::outbox::ParkedEvent>, BusError> {
        self.inner.parked(limit).await
    }
}

/// The outbox items all of whose events are among `published`, given what each fetched event
/// came from (item, and how many events that item made).
fn complete_items(fetched: &HashMap<i64, (i64, usize)>, published: &[i64]) -> Vec<i64> {
    let mut sent: HashMap<i64, (usize, usize)> = HashMap::new();
    for id in published {
        if let Some((item, count)) = fetched.get(id) {
            sent.entry(*item).or_insert((0, *count)).0 += 1;
        }
    }
    let mut done: Vec<i64> =
        sent.into_iter().filter(|(_, (sent, count))| sent >= count).map(|(item, _)| item).collect();
    done.sort_unstable();
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_pins_the_side_of_the_threshold_before_and_after() {
        // Reserving 1 of 10 with threshold 2: stays above; the level must still be 4 or more.
        assert_eq!(band(10, 2, -1), (4, i64::MAX, None));
        // Reserving 2 of 4: falls to the threshold.
        assert_eq!(band(4, 2, -2), (3, 4, Some(Crossing::Low)));
        // Reserving 1 of 2 (already low): stays low, and there must be 1.
        assert_eq!(band(2, 2, -1), (1, 2, None));
        // Releasing 3 with 1 available: back above the threshold.
        assert_eq!(band(1, 2, 3), (0, 2, Some(Crossing::Restocked)));
        // Releasing 1 with 0 available and threshold 2: still low.
        assert_eq!(band(0, 2, 1), (0, 1, None));
        for (available, threshold, delta) in [(10, 2, -1), (4, 2, -2), (2, 2, -1), (1, 2, 3), (0, 2, 1), (5, 0, -5)] {
            let (lo, hi, _) = band(available, threshold, delta);
            assert!((lo..=hi).contains(&available), "{available} {threshold} {delta}");
        }
    }

    #[test]
    fn held_shards_are_stable_and_spread() {
        assert_eq!(held_shard("o1"), held_shard("o1"));
        let used: std::collections::HashSet<u64> = (0..1000).map(|i| held_shard(&format!("o{i}"))).collect();
        assert_eq!(used.len() as u64, HELD_SHARDS);
    }

    #[test]
    fn an_item_is_deleted_only_when_all_its_events_are_published() {
        let fetched = HashMap::from([(0, (100, 2)), (1, (100, 2)), (2, (200, 1))]);
        assert_eq!(complete_items(&fetched, &[0, 2]), vec![200]);
        assert_eq!(complete_items(&fetched, &[0, 1, 2]), vec![100, 200]);
        assert!(complete_items(&fetched, &[1, 7]).is_empty());
    }
}
