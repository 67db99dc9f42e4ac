//! The embedded (SQLite) cart store.

use std::collections::HashMap;

use async_trait::async_trait;
use platform::events::outbox::OutboxSignal;
use platform::sqlite::{Db, DbError, now_ms};
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{Cart, ShippingChoice, new_cart_id};
use crate::store::{CartStore, StoreError};

/// Carts in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteCartStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqliteCartStore {
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

/// A JSON column's value, or the error of its column `index`.
fn parse<T: serde::de::DeserializeOwned>(text: &str, index: usize) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|error| {
        DbError::Sqlite(rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error)))
    })
}

fn codes_json(codes: &[String]) -> String {
    serde_json::to_string(codes).expect("codes serialize")
}

fn shipping_json(shipping: Option<&ShippingChoice>) -> Option<String> {
    shipping.map(|s| serde_json::to_string(s).expect("a shipping choice serializes"))
}

/// Replaces the codes and shipping choice of cart `id` (which exists), counting it as a change.
fn put_details(c: &Connection, id: &str, codes: &[String], shipping: Option<&ShippingChoice>) -> Result<(), DbError> {
    c.prepare_cached(
        "UPDATE carts SET codes = ?2, shipping = ?3, updated_at = ?4, version = version + 1 WHERE id = ?1",
    )?
    .execute(params![id, codes_json(codes), shipping_json(shipping), now_ms()])?;
    Ok(())
}

fn read_cart(c: &Connection, column: &str, value: &str) -> Result<Option<Cart>, DbError> {
    let head = c
        .prepare_cached(&format!(
            "SELECT id, owner_id, currency, version, codes, shipping FROM carts WHERE {column} = ?1"
        ))?
        .query_row(params![value], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    let Some((id, owner_id, currency, version, codes, shipping)) = head else { return Ok(None) };
    let codes: Vec<String> = parse(&codes, 4)?;
    let shipping: Option<ShippingChoice> = shipping.map(|text| parse(&text, 5)).transpose()?;
    let lines = c
        .prepare_cached("SELECT sku, quantity FROM cart_items WHERE cart_id = ?1 ORDER BY added_at, sku")?
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Cart { id, owner_id, currency, lines, version: version as u64, codes, shipping }))
}

fn insert_cart(c: &Connection, cart: &Cart) -> Result<(), DbError> {
    let now = now_ms();
    c.prepare_cached(
        "INSERT INTO carts (id, owner_id, currency, version, created_at, updated_at, codes, shipping)
            VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
    )?
    .execute(params![
        cart.id,
        cart.owner_id,
        cart.currency,
        cart.version as i64,
        now,
        codes_json(&cart.codes),
        shipping_json(cart.shipping.as_ref())
    ])?;
    let mut insert =
        c.prepare_cached("INSERT INTO cart_items (cart_id, sku, quantity, added_at) VALUES (?1, ?2, ?3, ?4)")?;
    for (sku, quantity) in &cart.lines {
        insert.execute(params![cart.id, sku, quantity, now])?;
    }
    Ok(())
}

/// Sets `sku` to `quantity` in cart `id` (which exists); `false` when a new line would exceed
/// `max_lines`.
fn put_line(c: &Connection, id: &str, sku: &str, quantity: i64, max_lines: usize) -> Result<bool, DbError> {
    let now = now_ms();
    if quantity <= 0 {
        c.prepare_cached("DELETE FROM cart_items WHERE cart_id = ?1 AND sku = ?2")?.execute(params![id, sku])?;
    } else {
        let updated = c
            .prepare_cached("UPDATE cart_items SET quantity = ?3 WHERE cart_id = ?1 AND sku = ?2")?
            .execute(params![id, sku, quantity])?;
        if updated == 0 {
            let lines: i64 = c
                .prepare_cached("SELECT count(*) FROM cart_items WHERE cart_id = ?1")?
                .query_row(params![id], |r| r.get(0))?;
            if lines as usize >= max_lines {
                return Ok(false);
            }
            c.prepare_cached("INSERT INTO cart_items (cart_id, sku, quantity, added_at) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![id, sku, quantity, now])?;
        }
    }
    c.prepare_cached("UPDATE carts SET updated_at = ?2, abandoned_at = NULL, version = version + 1 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(true)
}

#[async_trait]
impl CartStore for SqliteCartStore {
    async fn create(&self, cart: &Cart) -> Result<(), StoreError> {
        let cart = cart.clone();
        self.db.transaction(move |tx| insert_cart(tx, &cart)).await.map_err(backend)
    }

    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        let id = id.to_owned();
        self.db.read(move |c| read_cart(c, "id", &id)).await.map_err(backend)
    }

    async fn user_cart(&self, owner_id: &str, currency: &str) -> Result<Cart, StoreError> {
        let (owner_id, currency) = (owner_id.to_owned(), currency.to_owned());
        self.db
            .transaction(move |tx| {
                if let Some(cart) = read_cart(tx, "owner_id", &owner_id)? {
                    return Ok(cart);
                }
                let cart = Cart::new(new_cart_id(), Some(owner_id), &currency);
                insert_cart(tx, &cart)?;
                Ok(cart)
            })
            .await
            .map_err(backend)
    }

    async fn set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        let (id, sku) = (id.to_owned(), sku.to_owned());
        self.db
            .transaction(move |tx| {
                if read_cart(tx, "id", &id)?.is_none() {
                    return Ok(Ok(None));
                }
                if !put_line(tx, &id, &sku, quantity, max_lines)? {
                    return Ok(Err(StoreError::TooManyLines(max_lines)));
                }
                Ok(Ok(read_cart(tx, "id", &id)?))
            })
            .await
            .map_err(backend)?
    }

    async fn set_details(
        &self,
        id: &str,
        codes: &[String],
        shipping: Option<&ShippingChoice>,
    ) -> Result<Option<Cart>, StoreError> {
        let (id, codes, shipping) = (id.to_owned(), codes.to_vec(), shipping.cloned());
        self.db
            .transaction(move |tx| {
                if read_cart(tx, "id", &id)?.is_none() {
                    return Ok(None);
                }
                put_details(tx, &id, &codes, shipping.as_ref())?;
                read_cart(tx, "id", &id)
            })
            .await
            .map_err(backend)
    }

    async fn abandon(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<usize, StoreError> {
        self.db
            .transaction(move |tx| {
                let idle: Vec<(String, i64)> = tx
                    .prepare_cached(
                        "SELECT c.id, c.updated_at FROM carts c WHERE c.abandoned_at IS NULL AND c.updated_at < ?1
                         AND EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = c.id) ORDER BY c.updated_at LIMIT ?2",
                    )?
                    .query_map(params![before.timestamp_millis(), limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                let now = now_ms();
                for (id, updated_at) in &idle {
                    let cart = read_cart(tx, "id", id)?.expect("selected just now");
                    let idle_since = chrono::DateTime::from_timestamp_millis(*updated_at).unwrap_or_default();
                    let event = crate::store::abandoned(&cart, idle_since);
                    platform::sqlite::outbox_push(tx, &event)?;
                    tx.prepare_cached("UPDATE carts SET abandoned_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
                }
                Ok(idle.len())
            })
            .await
            .map_err(backend)
            .inspect(|&reported| self.signal.wake_if(reported > 0))
    }

    async fn merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        let (guest_id, owner_id, currency, caps) =
            (guest_id.to_owned(), owner_id.to_owned(), currency.to_owned(), caps.clone());
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let Some(guest) = read_cart(&tx, "id", &guest_id)?.filter(|g| g.owner_id.is_none()) else {
                    return Ok(Ok(None));
                };
                let mine = match read_cart(&tx, "owner_id", &owner_id)? {
                    Some(cart) => cart,
                    None => {
                        let cart = Cart::new(new_cart_id(), Some(owner_id.clone()), &currency);
                        insert_cart(&tx, &cart)?;
                        cart
                    }
                };
                let mut merged = mine.clone();
                if !merged.absorb(&guest.lines, &caps, max_lines) {
                    return Ok(Err(StoreError::TooManyLines(max_lines)));
                }
                for (sku, quantity) in &merged.lines {
                    if mine.quantity(sku) != *quantity {
                        put_line(&tx, &mine.id, sku, *quantity, usize::MAX)?;
                    }
                }
                merged.absorb_details(&guest);
                if merged.codes != mine.codes || merged.shipping != mine.shipping {
                    put_details(&tx, &mine.id, &merged.codes, merged.shipping.as_ref())?;
                }
                tx.prepare_cached("DELETE FROM carts WHERE id = ?1")?.execute(params![guest.id])?;
                let merged = read_cart(&tx, "id", &mine.id)?;
                tx.commit()?;
                Ok(Ok(merged))
            })
            .await
            .map_err(backend)?
    }
}
