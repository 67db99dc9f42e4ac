//! The embedded (SQLite) inventory store: every write is one `BEGIN IMMEDIATE` transaction on the
//! service's single writer, with its events in the outbox. The table's `CHECK`s make an oversell a
//! failed write rather than a bad row, should a bug ever try one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::contracts::inventory::{Line, Shortage};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::sqlite::{Db, DbError, now_ms, outbox_push};
use rusqlite::{Connection, OptionalExtension, params};

use super::{InventoryStore, Outcome, StoreError, check_level};
use crate::domain::{
    EXPIRED, LedgerEntry, LedgerKind, Reservation, ReservationStatus, Stock, caused, normalize_lines,
    reservation_event, shortages, stamp, stock_events,
};

/// The inventory in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteInventoryStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqliteInventoryStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each commit that wrote events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }
}

/// A value this adapter wrote that does not read back.
#[derive(Debug, thiserror::Error)]
#[error("stored {0} is not valid")]
struct Corrupt(&'static str);

fn corrupt(what: &'static str) -> DbError {
    DbError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(Corrupt(what))))
}

const STOCK_COLUMNS: &str = "sku, on_hand, reserved, low_stock_threshold, version";

fn read_stock(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stock> {
    Ok(Stock {
        sku: row.get(0)?,
        on_hand: row.get(1)?,
        reserved: row.get(2)?,
        low_stock_threshold: row.get(3)?,
        version: row.get(4)?,
    })
}

fn stock_of(c: &Connection, sku: &str) -> Result<Option<Stock>, DbError> {
    Ok(c.prepare_cached(&format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = ?1"))?
        .query_row(params![sku], read_stock)
        .optional()?)
}

fn millis(ms: i64) -> Result<DateTime<Utc>, DbError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("time"))
}

const RESERVATION_COLUMNS: &str = "order_id, status, lines, short, release_reason, expires_at, created_at, updated_at";

type ReservationRow = (String, String, String, String, Option<String>, i64, i64, i64);

fn reservation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReservationRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn reservation_from(row: ReservationRow) -> Result<Reservation, DbError> {
    let (order_id, status, lines, short, release_reason, expires_at, created_at, updated_at) = row;
    Ok(Reservation {
        order_id,
        status: ReservationStatus::parse(&status).ok_or_else(|| corrupt("reservation status"))?,
        lines: serde_json::from_str(&lines).map_err(|_| corrupt("reservation lines"))?,
        short: serde_json::from_str(&short).map_err(|_| corrupt("reservation shortages"))?,
        release_reason,
        expires_at: millis(expires_at)?,
        created_at: millis(created_at)?,
        updated_at: millis(updated_at)?,
    })
}

fn reservation_of(c: &Connection, order_id: &str) -> Result<Option<Reservation>, DbError> {
    c.prepare_cached(&format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE order_id = ?1"))?
        .query_row(params![order_id], reservation_row)
        .optional()?
        .map(reservation_from)
        .transpose()
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("lines and shortages serialize")
}

fn insert_reservation(tx: &Connection, reservation: &Reservation) -> Result<(), DbError> {
    tx.prepare_cached(
        "INSERT INTO reservations (order_id, status, lines, short, release_reason, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        reservation.order_id,
        reservation.status.as_str(),
        json(&reservation.lines),
        json(&reservation.short),
        reservation.release_reason,
        reservation.expires_at.timestamp_millis(),
        reservation.created_at.timestamp_millis(),
    ])?;
    Ok(())
}

/// Moves `reservation` to `status` (with `reason` for a release), conditional on its status being
/// still the one it has: `false` when it is not.
fn move_reservation(
    tx: &Connection,
    reservation: &mut Reservation,
    status: ReservationStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let moved = tx
        .prepare_cached(
            "UPDATE reservations SET status = ?2, release_reason = coalesce(?3, release_reason), updated_at = ?4
             WHERE order_id = ?1 AND status = ?5",
        )?
        .execute(params![
            reservation.order_id,
            status.as_str(),
            reason,
            now.timestamp_millis(),
            reservation.status.as_str()
        ])?;
    if moved == 1 {
        reservation.status = status;
        if let Some(reason) = reason {
            reservation.release_reason = Some(reason.to_owned());
        }
        reservation.updated_at = now;
    }
    Ok(moved == 1)
}

/// Applies `on_hand` and `reserved` deltas to `sku` (which must exist), writes its events, and
/// returns the new stock.
fn move_stock(
    tx: &Connection,
    sku: &str,
    on_hand: i64,
    reserved: i64,
    cause: Option<&Event>,
) -> Result<Stock, DbError> {
    let before = stock_of(tx, sku)?.ok_or_else(|| corrupt("reserved SKU"))?;
    let after = tx
        .prepare_cached(&format!(
            "UPDATE stock SET on_hand = on_hand + ?2, reserved = reserved + ?3, version = version + 1, updated_at = ?4
             WHERE sku = ?1 RETURNING {STOCK_COLUMNS}"
        ))?
        .query_row(params![sku, on_hand, reserved, now_ms()], read_stock)?;
    for event in stock_events(Some(&before), &after) {
        outbox_push(tx, &caused(event, cause))?;
    }
    Ok(after)
}

fn append_ledger(
    tx: &Connection,
    sku: &str,
    delta: i64,
    kind: LedgerKind,
    reason: &str,
    reference: &str,
) -> Result<(), DbError> {
    if delta != 0 {
        tx.prepare_cached(
            "INSERT INTO ledger (sku, delta, kind, reason, reference, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![sku, delta, kind.as_str(), reason, reference, now_ms()])?;
    }
    Ok(())
}

/// Sets `sku`'s units on hand (and threshold) in `tx`, with its ledger entry and events.
fn set_in(
    tx: &Connection,
    sku: &str,
    on_hand: i64,
    threshold: Option<i64>,
    kind: LedgerKind,
    reason: &str,
    actor: &str,
) -> Result<Result<Stock, StoreError>, DbError> {
    let before = stock_of(tx, sku)?;
    let reserved = before.as_ref().map_or(0, |s| s.reserved);
    if let Err(refused) = check_level(sku, on_hand, reserved) {
        return Ok(Err(refused));
    }
    let after = tx
        .prepare_cached(&format!(
            "INSERT INTO stock (sku, on_hand, low_stock_threshold, version, updated_at) VALUES (?1, ?2, coalesce(?3, 0), 1, ?4)
             ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand,
                low_stock_threshold = coalesce(?3, stock.low_stock_threshold), version = stock.version + 1,
                updated_at = excluded.updated_at
             RETURNING {STOCK_COLUMNS}"
        ))?
        .query_row(params![sku, on_hand, threshold, now_ms()], read_stock)?;
    append_ledger(tx, sku, on_hand - before.as_ref().map_or(0, |s| s.on_hand), kind, reason, actor)?;
    for event in stock_events(before.as_ref(), &after) {
        outbox_push(tx, &event)?;
    }
    Ok(Ok(after))
}

/// Gives back the units of `reservation` (held or committed) in `tx`: `false` when it was in
/// neither state any more.
fn release_in(
    tx: &Connection,
    reservation: &mut Reservation,
    reason: &str,
    cause: Option<&Event>,
) -> Result<bool, DbError> {
    let now = stamp(Utc::now());
    let (status, returned) = match reservation.status {
        ReservationStatus::Held => (ReservationStatus::Released, false),
        ReservationStatus::Committed => (ReservationStatus::Returned, true),
        _ => return Ok(false),
    };
    if !move_reservation(tx, reservation, status, Some(reason), now)? {
        return Ok(false);
    }
    for line in &reservation.lines {
        if returned {
            move_stock(tx, &line.sku, line.quantity, 0, cause)?;
            append_ledger(tx, &line.sku, line.quantity, LedgerKind::Return, reason, &reservation.order_id)?;
        } else {
            move_stock(tx, &line.sku, 0, -line.quantity, cause)?;
        }
    }
    outbox_push(tx, &caused(reservation_event(reservation), cause))?;
    Ok(true)
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[async_trait]
impl InventoryStore for SqliteInventoryStore {
    async fn get(&self, sku: &str) -> Result<Option<Stock>, StoreError> {
        let sku = sku.to_owned();
        Ok(self.db.read(move |c| stock_of(c, &sku)).await?)
    }

    async fn get_many(&self, skus: &[String]) -> Result<Vec<Stock>, StoreError> {
        let skus = skus.to_vec();
        // One trip to the reader for them all.
        Ok(self
            .db
            .read(move |c| {
                let mut found = Vec::with_capacity(skus.len());
                for sku in &skus {
                    if let Some(stock) = stock_of(c, sku)? {
                        found.push(stock);
                    }
                }
                Ok(found)
            })
            .await?)
    }

    async fn list(&self, low_only: bool, after: Option<&str>, limit: usize) -> Result<Vec<Stock>, StoreError> {
        let after = after.unwrap_or_default().to_owned();
        Ok(self
            .db
            .read(move |c| {
                // The low-stock filter is written as the partial index's condition, so it is used.
                let sql = if low_only {
                    format!(
                        "SELECT {STOCK_COLUMNS} FROM stock WHERE on_hand - reserved <= low_stock_threshold AND sku > ?1
                         ORDER BY sku LIMIT ?2"
                    )
                } else {
                    format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku > ?1 ORDER BY sku LIMIT ?2")
                };
                let rows = c
                    .prepare_cached(&sql)?
                    .query_map(params![after, limit as i64], read_stock)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn set(
        &self,
        sku: &str,
        on_hand: i64,
        low_stock_threshold: Option<i64>,
        reason: &str,
        actor: &str,
    ) -> Result<Stock, StoreError> {
        let (sku, reason, actor) = (sku.to_owned(), reason.to_owned(), actor.to_owned());
        let set = self
            .db
            .transaction(move |tx| set_in(tx, &sku, on_hand, low_stock_threshold, LedgerKind::Set, &reason, &actor))
            .await?;
        // Every change of a level has its events.
        self.signal.wake_if(set.is_ok());
        set
    }

    /// One transaction for every level: all are set, or none.
    async fn set_many(&self, levels: &[(String, i64)], reason: &str, actor: &str) -> Result<(), StoreError> {
        let (levels, reason, actor) = (levels.to_vec(), reason.to_owned(), actor.to_owned());
        let wrote = !levels.is_empty();
        let set = self
            .db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for (sku, on_hand) in &levels {
                    if let Err(refused) = set_in(&tx, sku, *on_hand, None, LedgerKind::Set, &reason, &actor)? {
                        // Dropping the transaction rolls back the levels set so far.
                        return Ok(Err(refused));
                    }
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await?;
        self.signal.wake_if(wrote && set.is_ok());
        set
    }

    async fn adjust(&self, sku: &str, delta: i64, reason: &str, actor: &str) -> Result<Stock, StoreError> {
        let (sku, reason, actor) = (sku.to_owned(), reason.to_owned(), actor.to_owned());
        let adjusted = self
            .db
            .transaction(move |tx| {
                let Some(before) = stock_of(tx, &sku)? else { return Ok(Err(StoreError::UnknownSku(sku))) };
                set_in(tx, &sku, before.on_hand.saturating_add(delta), None, LedgerKind::Adjust, &reason, &actor)
            })
            .await?;
        self.signal.wake_if(adjusted.is_ok());
        adjusted
    }

    async fn ledger(&self, sku: &str, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>, StoreError> {
        let sku = sku.to_owned();
        let rows = self
            .db
            .read(move |c| {
                let rows = c
                    .prepare_cached(
                        "SELECT seq, sku, delta, kind, reason, reference, at FROM ledger
                         WHERE sku = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                    )?
                    .query_map(params![sku, before.unwrap_or(i64::MAX), limit as i64], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, i64>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(seq, sku, delta, kind, reason, reference, at)| {
                Ok(LedgerEntry {
                    seq,
                    sku,
                    delta,
                    kind: LedgerKind::parse(&kind).ok_or_else(|| backend(Corrupt("ledger kind")))?,
                    reason,
                    reference,
                    at: millis(at)?,
                })
            })
            .collect()
    }

    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        let order_id = order_id.to_owned();
        Ok(self.db.read(move |c| reservation_of(c, &order_id)).await?)
    }

    async fn reserve(
        &self,
        order_id: &str,
        lines: &[Line],
        expires_at: DateTime<Utc>,
        cause: Option<&Event>,
    ) -> Result<Outcome, StoreError> {
        let lines = normalize_lines(lines).map_err(backend)?;
        let order_id = order_id.to_owned();
        let cause = cause.cloned();
        let outcome = self
            .db
            .transaction(move |tx| {
                if let Some(reservation) = reservation_of(tx, &order_id)? {
                    return Ok(Outcome { reservation, changed: false });
                }
                let mut stock = Vec::with_capacity(lines.len());
                for line in &lines {
                    stock.extend(stock_of(tx, &line.sku)?);
                }
                let short: Vec<Shortage> = shortages(&lines, |sku| stock.iter().find(|s| s.sku == sku));
                let now = stamp(Utc::now());
                let status = if short.is_empty() { ReservationStatus::Held } else { ReservationStatus::Rejected };
                let reservation = Reservation {
                    order_id,
                    status,
                    lines,
                    short,
                    release_reason: None,
                    expires_at: stamp(expires_at),
                    created_at: now,
                    updated_at: now,
                };
                insert_reservation(tx, &reservation)?;
                if status == ReservationStatus::Held {
                    for line in &reservation.lines {
                        move_stock(tx, &line.sku, 0, line.quantity, cause.as_ref())?;
                    }
                }
                outbox_push(tx, &caused(reservation_event(&reservation), cause.as_ref()))?;
                Ok(Outcome { reservation, changed: true })
            })
            .await?;
        self.signal.wake_if(outcome.changed);
        Ok(outcome)
    }

    async fn commit(&self, order_id: &str, cause: Option<&Event>) -> Result<Option<Outcome>, StoreError> {
        let order_id = order_id.to_owned();
        let cause = cause.cloned();
        let outcome = self
            .db
            .transaction(move |tx| {
                let Some(mut reservation) = reservation_of(tx, &order_id)? else { return Ok(None) };
                if reservation.status != ReservationStatus::Held {
                    return Ok(Some(Outcome { reservation, changed: false }));
                }
                move_reservation(tx, &mut reservation, ReservationStatus::Committed, None, stamp(Utc::now()))?;
                for line in &reservation.lines {
                    move_stock(tx, &line.sku, -line.quantity, -line.quantity, cause.as_ref())?;
                    append_ledger(tx, &line.sku, -line.quantity, LedgerKind::Sale, "order confirmed", &order_id)?;
                }
                outbox_push(tx, &caused(reservation_event(&reservation), cause.as_ref()))?;
                Ok(Some(Outcome { reservation, changed: true }))
            })
            .await?;
        self.signal.wake_if(outcome.as_ref().is_some_and(|o| o.changed));
        Ok(outcome)
    }

    async fn release(&self, order_id: &str, reason: &str, cause: Option<&Event>) -> Result<Outcome, StoreError> {
        let (order_id, reason) = (order_id.to_owned(), reason.to_owned());
        let cause = cause.cloned();
        let outcome = self
            .db
            .transaction(move |tx| {
                let Some(mut reservation) = reservation_of(tx, &order_id)? else {
                    let now = stamp(Utc::now());
                    let reservation = Reservation {
                        order_id,
                        status: ReservationStatus::Released,
                        lines: Vec::new(),
                        short: Vec::new(),
                        release_reason: Some(reason),
                        expires_at: now,
                        created_at: now,
                        updated_at: now,
                    };
                    insert_reservation(tx, &reservation)?;
                    outbox_push(tx, &caused(reservation_event(&reservation), cause.as_ref()))?;
                    return Ok(Outcome { reservation, changed: true });
                };
                let changed = release_in(tx, &mut reservation, &reason, cause.as_ref())?;
                Ok(Outcome { reservation, changed })
            })
            .await?;
        self.signal.wake_if(outcome.changed);
        Ok(outcome)
    }

    async fn expire(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Reservation>, StoreError> {
        let expired = self
            .db
            .transaction(move |tx| {
                let rows = tx
                    .prepare_cached(&format!(
                        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'held' AND expires_at <= ?1
                         ORDER BY expires_at LIMIT ?2"
                    ))?
                    .query_map(params![now.timestamp_millis(), limit as i64], reservation_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut expired = Vec::with_capacity(rows.len());
                for row in rows {
                    let order_id = row.0.clone();
                    let mut reservation = match reservation_from(row) {
                        Ok(reservation) => reservation,
                        Err(error) => {
                            // Left held (and logged) rather than holding back every other expiry.
                            tracing::error!(order_id, error = %platform::error::cause_chain(&error),
                                "a held reservation does not read back; it is not released");
                            continue;
                        }
                    };
                    if release_in(tx, &mut reservation, EXPIRED, None)? {
                        expired.push(reservation);
                    }
                }
                Ok(expired)
            })
            .await?;
        self.signal.wake_if(!expired.is_empty());
        Ok(expired)
    }
}
