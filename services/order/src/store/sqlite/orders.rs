//! The embedded (SQLite) order store: orders and their saga state in the service's database (the
//! carts' too, so placing an order empties its cart in the same transaction).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::money::Money;
use platform::sqlite::{Db, DbError, outbox_push};
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::order::{Order, OrderStatus, guest_customer_id, stamp};
use crate::domain::pricing::Breakdown;
use crate::domain::refund::Refund;
use crate::store::{Advance, OrderStore, Placed, StoreError};

/// Orders in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteOrderStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqliteOrderStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each commit that wrote events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }
}

fn backend(error: DbError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[derive(Debug, thiserror::Error)]
#[error("stored {0} is not valid")]
struct Corrupt(&'static str);

fn corrupt(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Corrupt(what)))
}

const COLUMNS: &str = "id, customer_id, status, items, total_amount, currency, shipping_address, payment_method, \
                       label_url, tracking_number, history, deadline, created_at, updated_at, pricing, redemptions, \
                       email, token, refunds";

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("time"))
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

fn read_order(row: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let items: Vec<crate::domain::order::OrderItem> = json(&row.get::<_, String>(3)?, "items")?;
    let total = Money { amount: row.get(4)?, currency: row.get(5)? };
    let pricing = match row.get::<_, Option<String>>(14)? {
        Some(text) => json(&text, "pricing")?,
        None => Breakdown::of_lines(&items, &total),
    };
    Ok(Order {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        status: OrderStatus::parse(&row.get::<_, String>(2)?).ok_or_else(|| corrupt("status"))?,
        items,
        total,
        pricing,
        redemptions: json(&row.get::<_, String>(15)?, "redemptions")?,
        shipping_address: json(&row.get::<_, String>(6)?, "shipping address")?,
        payment_method: row.get(7)?,
        label_url: row.get(8)?,
        tracking_number: row.get(9)?,
        history: json(&row.get::<_, String>(10)?, "history")?,
        email: row.get(16)?,
        token: row.get(17)?,
        refunds: json(&row.get::<_, String>(18)?, "refunds")?,
        deadline: row.get::<_, Option<i64>>(11)?.map(time).transpose()?,
        created_at: time(row.get(12)?)?,
        updated_at: time(row.get(13)?)?,
    })
}

fn order_where(c: &Connection, id: &str) -> Result<Option<Order>, DbError> {
    Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM orders WHERE id = ?1"))?
        .query_row(params![id], read_order)
        .optional()?)
}

fn text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("order parts serialize")
}

/// How often a promotion is used, in all or by one shopper.
pub(super) fn used(c: &Connection, promotion_id: &str, who: &str) -> Result<i64, DbError> {
    Ok(c.prepare_cached("SELECT used FROM redemptions WHERE promotion_id = ?1 AND customer = ?2")?
        .query_row(params![promotion_id, who], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn push_all(c: &Connection, events: &[Event]) -> Result<(), DbError> {
    for event in events {
        outbox_push(c, event)?;
    }
    Ok(())
}

fn list(c: &Connection, sql: &str, key: &str, cursor: &str, limit: usize) -> Result<Vec<Order>, DbError> {
    Ok(c.prepare_cached(sql)?
        .query_map(params![key, cursor, limit as i64], read_order)?
        .collect::<Result<Vec<_>, _>>()?)
}

#[async_trait]
impl OrderStore for SqliteOrderStore {
    async fn place(
        &self,
        order: &Order,
        key: &str,
        request_hash: &str,
        clear_cart: Option<(&str, u64)>,
        events: &[Event],
    ) -> Result<Placed, StoreError> {
        let (order, key, hash) = (order.clone(), key.to_owned(), request_hash.to_owned());
        let (clear_cart, events) = (clear_cart.map(|(id, version)| (id.to_owned(), version)), events.to_vec());
        let with_events = !events.is_empty();
        self.db
            .transaction(move |tx| {
                let existing: Option<(String, String)> = tx
                    .prepare_cached(
                        "SELECT id, request_hash FROM orders WHERE customer_id = ?1 AND idempotency_key = ?2",
                    )?
                    .query_row(params![order.customer_id, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((id, stored)) = existing {
                    if stored != hash {
                        return Ok(Placed::KeyReused);
                    }
                    let order = order_where(tx, &id)?.ok_or_else(|| DbError::Sqlite(corrupt("order")))?;
                    return Ok(Placed::Existing(order));
                }
                if let Some((cart, version)) = &clear_cart {
                    let stored: Option<i64> = tx
                        .prepare_cached("SELECT version FROM carts WHERE id = ?1")?
                        .query_row(params![cart], |r| r.get(0))
                        .optional()?;
                    if stored != Some(*version as i64) {
                        return Ok(Placed::CartChanged);
                    }
                }
                // The uses of limited promotions, all or none: the writer is alone in here, so
                // what is read is what is written over.
                for redemption in &order.redemptions {
                    for (who, limit) in redemption.counters() {
                        if used(tx, &redemption.promotion_id, who)? >= i64::from(limit.unwrap_or(u32::MAX)) {
                            return Ok(Placed::UsedUp(redemption.promotion_id.clone()));
                        }
                    }
                }
                for redemption in &order.redemptions {
                    for (who, _) in redemption.counters() {
                        tx.prepare_cached(
                            "INSERT INTO redemptions (promotion_id, customer, used) VALUES (?1, ?2, 1)
                             ON CONFLICT (promotion_id, customer) DO UPDATE SET used = used + 1",
                        )?
                        .execute(params![redemption.promotion_id, who])?;
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO orders (id, customer_id, status, items, total_amount, currency, shipping_address,
                        payment_method, history, deadline, idempotency_key, request_hash, created_at, updated_at,
                        pricing, redemptions, email, token)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16, ?17)",
                )?
                .execute(params![
                    order.id,
                    order.customer_id,
                    order.status.as_str(),
                    text(&order.items),
                    order.total.amount,
                    order.total.currency,
                    text(&order.shipping_address),
                    order.payment_method,
                    text(&order.history),
                    order.deadline.map(|d| d.timestamp_millis()),
                    key,
                    hash,
                    order.created_at.timestamp_millis(),
                    text(&order.pricing),
                    text(&order.redemptions),
                    order.email,
                    order.token,
                ])?;
                if let Some((cart, _)) = clear_cart {
                    tx.prepare_cached("DELETE FROM cart_items WHERE cart_id = ?1")?.execute(params![cart])?;
                    // Emptied of its lines and its codes (they were used); the shipping choice stays.
                    tx.prepare_cached("UPDATE carts SET version = version + 1, codes = '[]' WHERE id = ?1")?
                        .execute(params![cart])?;
                }
                push_all(tx, &events)?;
                Ok(Placed::New(order))
            })
            .await
            .map_err(backend)
            .inspect(|placed| self.signal.wake_if(with_events && matches!(placed, Placed::New(_))))
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let id = id.to_owned();
        self.db.read(move |c| order_where(c, &id)).await.map_err(backend)
    }

    async fn by_key(&self, customer_id: &str, key: &str) -> Result<Option<(Order, String)>, StoreError> {
        let (customer, key) = (customer_id.to_owned(), key.to_owned());
        self.db
            .read(move |c| {
                let found: Option<(String, String)> = c
                    .prepare_cached(
                        "SELECT id, request_hash FROM orders WHERE customer_id = ?1 AND idempotency_key = ?2",
                    )?
                    .query_row(params![customer, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((id, hash)) = found else { return Ok(None) };
                Ok(order_where(c, &id)?.map(|order| (order, hash)))
            })
            .await
            .map_err(backend)
    }

    async fn by_customer(
        &self,
        customer_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let (customer, before) = (customer_id.to_owned(), before.unwrap_or("\u{10FFFF}").to_owned());
        let sql = format!("SELECT {COLUMNS} FROM orders WHERE customer_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3");
        self.db.read(move |c| list(c, &sql, &customer, &before, limit)).await.map_err(backend)
    }

    async fn by_status(
        &self,
        status: OrderStatus,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let after = after.unwrap_or_default().to_owned();
        let sql = format!("SELECT {COLUMNS} FROM orders WHERE status = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
        self.db.read(move |c| list(c, &sql, status.as_str(), &after, limit)).await.map_err(backend)
    }

    async fn advance(
        &self,
        id: &str,
        from: &[OrderStatus],
        advance: &Advance,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError> {
        let (id, from, advance, events) = (id.to_owned(), from.to_vec(), advance.clone(), events.to_vec());
        let with_events = !events.is_empty();
        self.db
            .transaction(move |tx| {
                let Some(mut order) = order_where(tx, &id)? else { return Ok(None) };
                if !from.contains(&order.status) {
                    return Ok(None);
                }
                let was_kept = order.status.is_kept();
                let now = stamp(Utc::now());
                advance.apply(&mut order, now);
                if was_kept && !order.status.is_kept() {
                    // Failed, rejected or cancelled: its uses of promotions go back.
                    for redemption in &order.redemptions {
                        for (who, _) in redemption.counters() {
                            tx.prepare_cached(
                                "UPDATE redemptions SET used = used - 1
                                 WHERE promotion_id = ?1 AND customer = ?2 AND used > 0",
                            )?
                            .execute(params![redemption.promotion_id, who])?;
                        }
                    }
                }
                tx.prepare_cached(
                    "UPDATE orders SET status = ?2, history = ?3, label_url = ?4, tracking_number = ?5, deadline = ?6,
                        updated_at = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    order.id,
                    order.status.as_str(),
                    text(&order.history),
                    order.label_url,
                    order.tracking_number,
                    order.deadline.map(|d| d.timestamp_millis()),
                    now.timestamp_millis(),
                ])?;
                push_all(tx, &events)?;
                Ok(Some(order))
            })
            .await
            .map_err(backend)
            .inspect(|moved| self.signal.wake_if(with_events && moved.is_some()))
    }

    async fn refund(
        &self,
        id: &str,
        seen: usize,
        refund: &Refund,
        whole: bool,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError> {
        let (id, refund, events) = (id.to_owned(), refund.clone(), events.to_vec());
        let with_events = !events.is_empty();
        self.db
            .transaction(move |tx| {
                let Some(mut order) = order_where(tx, &id)? else { return Ok(None) };
                if order.refunds.len() != seen || !matches!(order.status, OrderStatus::Shipped | OrderStatus::Delivered)
                {
                    return Ok(None);
                }
                let now = stamp(Utc::now());
                order.refunds.push(refund);
                if whole {
                    Advance { steps: vec![(OrderStatus::Refunded, None)], ..Advance::default() }.apply(&mut order, now);
                }
                order.updated_at = now;
                tx.prepare_cached(
                    "UPDATE orders SET status = ?2, history = ?3, refunds = ?4, updated_at = ?5 WHERE id = ?1",
                )?
                .execute(params![
                    order.id,
                    order.status.as_str(),
                    text(&order.history),
                    text(&order.refunds),
                    now.timestamp_millis()
                ])?;
                push_all(tx, &events)?;
                Ok(Some(order))
            })
            .await
            .map_err(backend)
            .inspect(|done| self.signal.wake_if(with_events && done.is_some()))
    }

    async fn claim_guest_orders(&self, email: &str, user_id: &str) -> Result<usize, StoreError> {
        let (guest, user) = (guest_customer_id(email), user_id.to_owned());
        self.db
            .call(move |c| {
                // The guest's idempotency keys end with the claim (the account has keys of its own).
                Ok(c.prepare_cached(
                    "UPDATE orders SET customer_id = ?2, idempotency_key = 'claimed#' || id WHERE customer_id = ?1",
                )?
                .execute(params![guest, user])?)
            })
            .await
            .map_err(backend)
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM orders WHERE deadline IS NOT NULL AND deadline <= ?1 ORDER BY deadline LIMIT ?2"
        );
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&sql)?
                    .query_map(params![now.timestamp_millis(), limit as i64], read_order)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .map_err(backend)
    }
}
