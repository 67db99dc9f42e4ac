//! The PostgreSQL payment store (RDS on AWS): every write one transaction that locks the payment's
//! row (`SELECT … FOR UPDATE`), with its log entry and its events in the outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::money::Money;
use platform::postgres::outbox_push;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool, PgRow};

use super::{KEY_LEASE_SECS, KeyClaim, PaymentStore, RefundOutcome, StoreError};
use crate::domain::change::{self, Applied, Change, LogLine};
use crate::domain::payment::{
    Failure, LogEntry, NewPayment, Payment, PaymentStatus, Refund, RefundStatus, Transition, stamp,
};

/// The service's PostgreSQL schema.
pub const MIGRATIONS: &[platform::sqlite::Migration] = &[
    platform::sqlite::Migration {
        scope: crate::NAME,
        version: 1,
        name: "payments",
        sql: include_str!("../../../../migrations/payment/postgres/0001_payments.sql"),
    },
    platform::sqlite::Migration {
        scope: crate::NAME,
        version: 2,
        name: "payments_by_status",
        sql: include_str!("../../../../migrations/payment/postgres/0002_payments_by_status.sql"),
    },
];

/// Payments in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgPaymentStore {
    pool: PgPool,
    signal: OutboxSignal,
}

impl PgPaymentStore {
    /// A store on `pool` (migrated with [`MIGRATIONS`] and the platform's).
    pub fn new(pool: PgPool) -> Self {
        Self { pool, signal: OutboxSignal::default() }
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

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Backend(Box::new(Corrupt(what)))
}

const PAYMENT_COLUMNS: &str = "id, order_id, customer_id, amount, currency, status, payment_method, provider, \
                               provider_ref, captured, refunded, failure, created_at, updated_at";

fn read_payment(row: &PgRow) -> Result<Payment, StoreError> {
    let status: String = row.try_get("status")?;
    let failure: Option<serde_json::Value> = row.try_get("failure")?;
    Ok(Payment {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        customer_id: row.try_get("customer_id")?,
        amount: Money { amount: row.try_get("amount")?, currency: row.try_get("currency")? },
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        payment_method: row.try_get("payment_method")?,
        provider: row.try_get("provider")?,
        provider_ref: row.try_get("provider_ref")?,
        captured: row.try_get("captured")?,
        refunded: row.try_get("refunded")?,
        failure: failure.map(serde_json::from_value::<Failure>).transpose().map_err(|_| corrupt("failure"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn payment_where(
    c: &mut PgConnection,
    column: &str,
    value: &str,
    lock: bool,
) -> Result<Option<Payment>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(&mut *c).await?;
    row.as_ref().map(read_payment).transpose()
}

const REFUND_COLUMNS: &str = "id, payment_id, amount, currency, status, provider_ref, reason, created_at";

fn read_refund(row: &PgRow) -> Result<Refund, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Refund {
        id: row.try_get("id")?,
        payment_id: row.try_get("payment_id")?,
        amount: Money { amount: row.try_get("amount")?, currency: row.try_get("currency")? },
        status: RefundStatus::parse(&status).ok_or_else(|| corrupt("refund status"))?,
        provider_ref: row.try_get("provider_ref")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn refund_where(c: &mut PgConnection, id: &str, lock: bool) -> Result<Option<Refund>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *c).await?;
    row.as_ref().map(read_refund).transpose()
}

/// Writes the payment's row as `payment` has it.
async fn write_payment(c: &mut PgConnection, payment: &Payment) -> Result<(), StoreError> {
    let failure = payment.failure.as_ref().map(|f| serde_json::to_value(f).expect("a failure serializes"));
    sqlx::query(
        "UPDATE payments SET status = $2, provider_ref = $3, captured = $4, refunded = $5, failure = $6,
            updated_at = $7 WHERE id = $1",
    )
    .bind(&payment.id)
    .bind(payment.status.as_str())
    .bind(&payment.provider_ref)
    .bind(payment.captured)
    .bind(payment.refunded)
    .bind(failure)
    .bind(payment.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn insert_refund(c: &mut PgConnection, refund: &Refund) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount, currency, status, provider_ref, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&refund.id)
    .bind(&refund.payment_id)
    .bind(refund.amount.amount)
    .bind(&refund.amount.currency)
    .bind(refund.status.as_str())
    .bind(&refund.provider_ref)
    .bind(&refund.reason)
    .bind(refund.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Appends `line` to the log of `payment`, with its status, provider reference and time as they stand.
async fn append_log(c: &mut PgConnection, payment: &Payment, line: &LogLine) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payment_log (payment_id, kind, status, amount, provider_ref, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&payment.id)
    .bind(&line.kind)
    .bind(payment.status.as_str())
    .bind(line.amount)
    .bind(&payment.provider_ref)
    .bind(&line.detail)
    .bind(payment.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn push_all(c: &mut PgConnection, events: &[Event]) -> Result<(), StoreError> {
    for event in events {
        outbox_push(c, event).await?;
    }
    Ok(())
}

/// Writes what a change applied: the payment's row when it changed, the log entries, and the
/// events when the change publishes them (the refund's row is the caller's).
async fn record(c: &mut PgConnection, applied: &Applied, events: &[Event]) -> Result<(), StoreError> {
    if applied.payment_changed {
        write_payment(c, &applied.payment).await?;
    }
    for line in &applied.log {
        append_log(c, &applied.payment, line).await?;
    }
    if applied.publish {
        push_all(c, events).await?;
    }
    Ok(())
}

#[async_trait]
impl PaymentStore for PgPaymentStore {
    async fn open(&self, new: &NewPayment, initial: PaymentStatus) -> Result<(Payment, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = stamp(Utc::now());
        let id = format!("pay_{}", uuid::Uuid::now_v7().simple());
        // One payment per order: a concurrent open of the same order waits here and then finds it.
        let inserted = sqlx::query(
            "INSERT INTO payments (id, order_id, customer_id, amount, currency, status, payment_method, provider,
                created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&id)
        .bind(&new.order_id)
        .bind(&new.customer_id)
        .bind(new.amount.amount)
        .bind(&new.amount.currency)
        .bind(initial.as_str())
        .bind(&new.payment_method)
        .bind(&new.provider)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let payment = payment_where(&mut tx, "order_id", &new.order_id, false)
            .await?
            .ok_or_else(|| StoreError::UnknownPayment(new.order_id.clone()))?;
        if inserted {
            append_log(&mut tx, &payment, &change::opened(&payment)).await?;
        }
        tx.commit().await?;
        Ok((payment, inserted))
    }

    async fn get(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        let mut c = self.pool.acquire().await?;
        payment_where(&mut c, "id", id, false).await
    }

    async fn by_order(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        let mut c = self.pool.acquire().await?;
        payment_where(&mut c, "order_id", order_id, false).await
    }

    async fn by_provider_ref(&self, provider_ref: &str) -> Result<Option<Payment>, StoreError> {
        let mut c = self.pool.acquire().await?;
        payment_where(&mut c, "provider_ref", provider_ref, false).await
    }

    async fn stale(
        &self,
        status: PaymentStatus,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(before)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read_payment).collect()
    }

    async fn transition(
        &self,
        id: &str,
        from: &[PaymentStatus],
        transition: &Transition,
        events: &[Event],
    ) -> Result<Option<Payment>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(payment) = payment_where(&mut tx, "id", id, true).await? else { return Ok(None) };
        let Ok(applied) = change::apply(payment, Change::Move { from, transition }, Utc::now()) else {
            return Ok(None);
        };
        record(&mut tx, &applied, events).await?;
        tx.commit().await?;
        self.signal.wake_if(applied.publish && !events.is_empty());
        Ok(Some(applied.payment))
    }

    async fn refund(
        &self,
        refund: &Refund,
        refunded_before: Option<i64>,
        events: &[Event],
    ) -> Result<Payment, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(payment) = payment_where(&mut tx, "id", &refund.payment_id, true).await? else {
            return Err(StoreError::UnknownPayment(refund.payment_id.clone()));
        };
        let applied = change::apply(payment, Change::Refund { refund, refunded_before }, Utc::now())?;
        if let Some(recorded) = &applied.refund {
            insert_refund(&mut tx, recorded).await?;
        }
        record(&mut tx, &applied, events).await?;
        tx.commit().await?;
        self.signal.wake_if(applied.publish && !events.is_empty());
        Ok(applied.payment)
    }

    async fn settle_refund(
        &self,
        refund_id: &str,
        outcome: RefundOutcome,
        events: &[Event],
    ) -> Result<Payment, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(refund) = refund_where(&mut tx, refund_id, true).await? else {
            return Err(StoreError::UnknownPayment(refund_id.to_owned()));
        };
        let Some(payment) = payment_where(&mut tx, "id", &refund.payment_id, true).await? else {
            return Err(StoreError::UnknownPayment(refund.payment_id.clone()));
        };
        let applied = change::apply(payment, Change::Settle { refund: &refund, outcome: &outcome }, Utc::now())?;
        if let Some(settled) = &applied.refund {
            sqlx::query("UPDATE refunds SET status = $2, provider_ref = $3 WHERE id = $1")
                .bind(&settled.id)
                .bind(settled.status.as_str())
                .bind(&settled.provider_ref)
                .execute(&mut *tx)
                .await?;
        }
        record(&mut tx, &applied, events).await?;
        tx.commit().await?;
        self.signal.wake_if(applied.publish && !events.is_empty());
        Ok(applied.payment)
    }

    async fn pending_refunds(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Refund>, StoreError> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).bind(limit as i64).fetch_all(&self.pool).await?;
        rows.iter().map(read_refund).collect()
    }

    async fn get_refund(&self, refund_id: &str) -> Result<Option<Refund>, StoreError> {
        let mut c = self.pool.acquire().await?;
        refund_where(&mut c, refund_id, false).await
    }

    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(payment_id).fetch_all(&self.pool).await?;
        rows.iter().map(read_refund).collect()
    }

    async fn log(&self, payment_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, payment_id, kind, status, amount, provider_ref, detail, at FROM payment_log
             WHERE payment_id = $1 ORDER BY seq",
        )
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let at: DateTime<Utc> = row.try_get("at")?;
                Ok(LogEntry {
                    seq: row.try_get("seq")?,
                    payment_id: row.try_get("payment_id")?,
                    kind: row.try_get("kind")?,
                    status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
                    amount: row.try_get("amount")?,
                    provider_ref: row.try_get("provider_ref")?,
                    detail: row.try_get("detail")?,
                    at,
                })
            })
            .collect()
    }

    async fn claim_key(&self, scope: &str, key: &str, request_hash: &str) -> Result<KeyClaim, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok(KeyClaim::New);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, response, created_at < now() - make_interval(secs => $3) AS expired
             FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(KEY_LEASE_SECS as f64)
        .fetch_optional(&self.pool)
        .await?;
        // Released between the two statements: claim it again.
        let Some(row) = row else { return Box::pin(self.claim_key(scope, key, request_hash)).await };
        let stored: String = row.try_get("request_hash")?;
        let status: Option<i32> = row.try_get("status")?;
        let response: Option<String> = row.try_get("response")?;
        let expired: bool = row.try_get("expired")?;
        Ok(match (stored == request_hash, status, response) {
            (false, ..) => KeyClaim::Mismatch,
            (true, Some(status), Some(body)) => KeyClaim::Done(status as u16, body),
            _ if expired => {
                // The request that claimed it died: the same request takes it over (once).
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = now()
                     WHERE scope = $1 AND key = $2 AND status IS NULL AND created_at < now() - make_interval(secs => $3)",
                )
                .bind(scope)
                .bind(key)
                .bind(KEY_LEASE_SECS as f64)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1;
                if taken { KeyClaim::New } else { KeyClaim::InProgress }
            }
            _ => KeyClaim::InProgress,
        })
    }

    async fn complete_key(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency_keys SET status = $3, response = $4 WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .bind(i32::from(status))
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET created_at = 'epoch' WHERE scope = $1 AND key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_webhook(&self, provider: &str, event_id: &str, event_type: &str) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (provider, event_id, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(event_id)
        .bind(event_type)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        Ok(inserted)
    }
}
