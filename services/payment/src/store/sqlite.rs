//! The embedded (SQLite) payment store: every write one `BEGIN IMMEDIATE` transaction on the
//! service's single writer, with its log entry and its events in the outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::money::Money;
use platform::sqlite::{Db, DbError, outbox_push};
use rusqlite::{Connection, OptionalExtension, params};

use super::{KEY_LEASE_SECS, KeyClaim, PaymentStore, RefundOutcome, StoreError};
use crate::domain::change::{self, Applied, Change, LogLine};
use crate::domain::payment::{
    Failure, LogEntry, NewPayment, Payment, PaymentStatus, Refund, RefundStatus, Transition, stamp,
};

/// Payments in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqlitePaymentStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqlitePaymentStore {
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

fn corrupt(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Corrupt(what)))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(value: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| corrupt("time"))
}

fn status(name: &str) -> rusqlite::Result<PaymentStatus> {
    PaymentStatus::parse(name).ok_or_else(|| corrupt("status"))
}

const PAYMENT_COLUMNS: &str = "id, order_id, customer_id, amount, currency, status, payment_method, provider, \
                               provider_ref, captured, refunded, failure, created_at, updated_at";

fn read_payment(row: &rusqlite::Row<'_>) -> rusqlite::Result<Payment> {
    let failure: Option<String> = row.get(11)?;
    Ok(Payment {
        id: row.get(0)?,
        order_id: row.get(1)?,
        customer_id: row.get(2)?,
        amount: Money { amount: row.get(3)?, currency: row.get(4)? },
        status: status(&row.get::<_, String>(5)?)?,
        payment_method: row.get(6)?,
        provider: row.get(7)?,
        provider_ref: row.get(8)?,
        captured: row.get(9)?,
        refunded: row.get(10)?,
        failure: failure.map(|f| serde_json::from_str::<Failure>(&f).map_err(|_| corrupt("failure"))).transpose()?,
        created_at: time(row.get(12)?)?,
        updated_at: time(row.get(13)?)?,
    })
}

fn payment_where(c: &Connection, column: &str, value: &str) -> Result<Option<Payment>, DbError> {
    Ok(c.prepare_cached(&format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = ?1"))?
        .query_row(params![value], read_payment)
        .optional()?)
}

/// Appends `line` to the log of `payment`, with its status, provider reference and time as they stand.
fn append_log(c: &Connection, payment: &Payment, line: &LogLine) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO payment_log (payment_id, kind, status, amount, provider_ref, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        payment.id,
        line.kind,
        payment.status.as_str(),
        line.amount,
        payment.provider_ref,
        line.detail,
        micros(payment.updated_at)
    ])?;
    Ok(())
}

fn push_all(c: &Connection, events: &[Event]) -> Result<(), DbError> {
    for event in events {
        outbox_push(c, event)?;
    }
    Ok(())
}

const REFUND_COLUMNS: &str = "id, payment_id, amount, currency, status, provider_ref, reason, created_at";

fn read_refund(row: &rusqlite::Row<'_>) -> rusqlite::Result<Refund> {
    Ok(Refund {
        id: row.get(0)?,
        payment_id: row.get(1)?,
        amount: Money { amount: row.get(2)?, currency: row.get(3)? },
        status: RefundStatus::parse(&row.get::<_, String>(4)?).ok_or_else(|| corrupt("refund status"))?,
        provider_ref: row.get(5)?,
        reason: row.get(6)?,
        created_at: time(row.get(7)?)?,
    })
}

fn refund_where(c: &Connection, id: &str) -> Result<Option<Refund>, DbError> {
    Ok(c.prepare_cached(&format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1"))?
        .query_row(params![id], read_refund)
        .optional()?)
}

/// Writes the payment's row as `payment` has it.
fn write_payment(c: &Connection, payment: &Payment) -> Result<(), DbError> {
    let failure = payment.failure.as_ref().map(|f| serde_json::to_string(f).expect("a failure serializes"));
    c.prepare_cached(
        "UPDATE payments SET status = ?2, provider_ref = ?3, captured = ?4, refunded = ?5, failure = ?6, updated_at = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        payment.id,
        payment.status.as_str(),
        payment.provider_ref,
        payment.captured,
        payment.refunded,
        failure,
        micros(payment.updated_at)
    ])?;
    Ok(())
}

fn insert_refund(c: &Connection, refund: &Refund) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO refunds (id, payment_id, amount, currency, status, provider_ref, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        refund.id,
        refund.payment_id,
        refund.amount.amount,
        refund.amount.currency,
        refund.status.as_str(),
        refund.provider_ref,
        refund.reason,
        micros(refund.created_at)
    ])?;
    Ok(())
}

/// Writes what a change applied: the payment's row when it changed, the log entries, and the
/// events when the change publishes them (the refund's row is the caller's).
fn record(c: &Connection, applied: &Applied, events: &[Event]) -> Result<(), DbError> {
    if applied.payment_changed {
        write_payment(c, &applied.payment)?;
    }
    for line in &applied.log {
        append_log(c, &applied.payment, line)?;
    }
    if applied.publish {
        push_all(c, events)?;
    }
    Ok(())
}

#[async_trait]
impl PaymentStore for SqlitePaymentStore {
    async fn open(&self, new: &NewPayment, initial: PaymentStatus) -> Result<(Payment, bool), StoreError> {
        let new = new.clone();
        Ok(self
            .db
            .transaction(move |tx| {
                if let Some(existing) = payment_where(tx, "order_id", &new.order_id)? {
                    return Ok((existing, false));
                }
                let now = stamp(Utc::now());
                let payment = Payment {
                    id: format!("pay_{}", uuid::Uuid::now_v7().simple()),
                    order_id: new.order_id,
                    customer_id: new.customer_id,
                    amount: new.amount,
                    status: initial,
                    payment_method: new.payment_method,
                    provider: new.provider,
                    provider_ref: None,
                    captured: 0,
                    refunded: 0,
                    failure: None,
                    created_at: now,
                    updated_at: now,
                };
                tx.prepare_cached(
                    "INSERT INTO payments (id, order_id, customer_id, amount, currency, status, payment_method,
                        provider, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                )?
                .execute(params![
                    payment.id,
                    payment.order_id,
                    payment.customer_id,
                    payment.amount.amount,
                    payment.amount.currency,
                    payment.status.as_str(),
                    payment.payment_method,
                    payment.provider,
                    micros(now),
                ])?;
                append_log(tx, &payment, &change::opened(&payment))?;
                Ok((payment, true))
            })
            .await?)
    }

    async fn get(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        let id = id.to_owned();
        Ok(self.db.read(move |c| payment_where(c, "id", &id)).await?)
    }

    async fn by_order(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        let order_id = order_id.to_owned();
        Ok(self.db.read(move |c| payment_where(c, "order_id", &order_id)).await?)
    }

    async fn by_provider_ref(&self, provider_ref: &str) -> Result<Option<Payment>, StoreError> {
        let provider_ref = provider_ref.to_owned();
        Ok(self.db.read(move |c| payment_where(c, "provider_ref", &provider_ref)).await?)
    }

    async fn stale(
        &self,
        status: PaymentStatus,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let rows = c
                    .prepare_cached(&format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = ?1 AND updated_at < ?2
                         ORDER BY updated_at LIMIT ?3"
                    ))?
                    .query_map(params![status.as_str(), micros(before), limit as i64], read_payment)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn transition(
        &self,
        id: &str,
        from: &[PaymentStatus],
        transition: &Transition,
        events: &[Event],
    ) -> Result<Option<Payment>, StoreError> {
        let (id, from, transition, events) = (id.to_owned(), from.to_vec(), transition.clone(), events.to_vec());
        let with_events = !events.is_empty();
        let moved = self
            .db
            .transaction(move |tx| {
                let Some(payment) = payment_where(tx, "id", &id)? else { return Ok(None) };
                let change = Change::Move { from: &from, transition: &transition };
                let Ok(applied) = change::apply(payment, change, Utc::now()) else { return Ok(None) };
                record(tx, &applied, &events)?;
                Ok(Some(applied))
            })
            .await?;
        self.signal.wake_if(moved.as_ref().is_some_and(|m| m.publish) && with_events);
        Ok(moved.map(|m| m.payment))
    }

    async fn refund(
        &self,
        refund: &Refund,
        refunded_before: Option<i64>,
        events: &[Event],
    ) -> Result<Payment, StoreError> {
        let (refund, events) = (refund.clone(), events.to_vec());
        let with_events = !events.is_empty();
        let applied = self
            .db
            .transaction(move |tx| {
                let Some(payment) = payment_where(tx, "id", &refund.payment_id)? else {
                    return Ok(Err(StoreError::UnknownPayment(refund.payment_id)));
                };
                let applied =
                    match change::apply(payment, Change::Refund { refund: &refund, refunded_before }, Utc::now()) {
                        Ok(applied) => applied,
                        Err(refused) => return Ok(Err(refused.into())),
                    };
                if let Some(recorded) = &applied.refund {
                    insert_refund(tx, recorded)?;
                }
                record(tx, &applied, &events)?;
                Ok(Ok(applied))
            })
            .await??;
        self.signal.wake_if(applied.publish && with_events);
        Ok(applied.payment)
    }

    async fn settle_refund(
        &self,
        refund_id: &str,
        outcome: RefundOutcome,
        events: &[Event],
    ) -> Result<Payment, StoreError> {
        let (refund_id, events) = (refund_id.to_owned(), events.to_vec());
        let with_events = !events.is_empty();
        let applied = self
            .db
            .transaction(move |tx| {
                let Some(refund) = refund_where(tx, &refund_id)? else {
                    return Ok(Err(StoreError::UnknownPayment(refund_id)));
                };
                let Some(payment) = payment_where(tx, "id", &refund.payment_id)? else {
                    return Ok(Err(StoreError::UnknownPayment(refund.payment_id)));
                };
                let applied =
                    match change::apply(payment, Change::Settle { refund: &refund, outcome: &outcome }, Utc::now()) {
                        Ok(applied) => applied,
                        Err(refused) => return Ok(Err(refused.into())),
                    };
                if let Some(settled) = &applied.refund {
                    tx.prepare_cached("UPDATE refunds SET status = ?2, provider_ref = ?3 WHERE id = ?1")?
                        .execute(params![settled.id, settled.status.as_str(), settled.provider_ref])?;
                }
                record(tx, &applied, &events)?;
                Ok(Ok(applied))
            })
            .await??;
        self.signal.wake_if(applied.publish && with_events);
        Ok(applied.payment)
    }

    async fn pending_refunds(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Refund>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let rows = c
                    .prepare_cached(&format!(
                        "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'pending' AND created_at < ?1
                         ORDER BY created_at LIMIT ?2"
                    ))?
                    .query_map(params![micros(before), limit as i64], read_refund)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn get_refund(&self, refund_id: &str) -> Result<Option<Refund>, StoreError> {
        let refund_id = refund_id.to_owned();
        Ok(self.db.read(move |c| refund_where(c, &refund_id)).await?)
    }

    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        let payment_id = payment_id.to_owned();
        Ok(self
            .db
            .read(move |c| {
                let rows = c
                    .prepare_cached(&format!(
                        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ?1 ORDER BY created_at, id"
                    ))?
                    .query_map(params![payment_id], read_refund)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn log(&self, payment_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        let payment_id = payment_id.to_owned();
        Ok(self
            .db
            .read(move |c| {
                let rows = c
                    .prepare_cached(
                        "SELECT seq, payment_id, kind, status, amount, provider_ref, detail, at FROM payment_log
                         WHERE payment_id = ?1 ORDER BY seq",
                    )?
                    .query_map(params![payment_id], |row| {
                        Ok(LogEntry {
                            seq: row.get(0)?,
                            payment_id: row.get(1)?,
                            kind: row.get(2)?,
                            status: status(&row.get::<_, String>(3)?)?,
                            amount: row.get(4)?,
                            provider_ref: row.get(5)?,
                            detail: row.get(6)?,
                            at: time(row.get(7)?)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn claim_key(&self, scope: &str, key: &str, request_hash: &str) -> Result<KeyClaim, StoreError> {
        let (scope, key, hash) = (scope.to_owned(), key.to_owned(), request_hash.to_owned());
        Ok(self
            .db
            .transaction(move |tx| {
                let existing: Option<(String, Option<u16>, Option<String>, i64)> = tx
                    .prepare_cached(
                        "SELECT request_hash, status, response, created_at FROM idempotency_keys
                         WHERE scope = ?1 AND key = ?2",
                    )?
                    .query_row(params![scope, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                let now = micros(Utc::now());
                Ok(match existing {
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![scope, key, hash, now])?;
                        KeyClaim::New
                    }
                    Some((stored, ..)) if stored != hash => KeyClaim::Mismatch,
                    Some((_, Some(status), Some(body), _)) => KeyClaim::Done(status, body),
                    Some((.., claimed)) if claimed < now - KEY_LEASE_SECS * 1_000_000 => {
                        tx.prepare_cached("UPDATE idempotency_keys SET created_at = ?3 WHERE scope = ?1 AND key = ?2")?
                            .execute(params![scope, key, now])?;
                        KeyClaim::New
                    }
                    Some(_) => KeyClaim::InProgress,
                })
            })
            .await?)
    }

    async fn complete_key(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        let (scope, key, body) = (scope.to_owned(), key.to_owned(), body.to_owned());
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE idempotency_keys SET status = ?3, response = ?4 WHERE scope = ?1 AND key = ?2",
                )?
                .execute(params![scope, key, status, body])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE idempotency_keys SET created_at = 0 WHERE scope = ?1 AND key = ?2 AND status IS NULL",
                )?
                .execute(params![scope, key])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn record_webhook(&self, provider: &str, event_id: &str, event_type: &str) -> Result<bool, StoreError> {
        let (provider, event_id, event_type) = (provider.to_owned(), event_id.to_owned(), event_type.to_owned());
        Ok(self
            .db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_events (provider, event_id, event_type, received_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![provider, event_id, event_type, platform::sqlite::now_ms()])?
                    == 1)
            })
            .await?)
    }
}
