//! The embedded (SQLite) cart store.

use std::collections::HashMap;

use async_trait::async_trait;
use platform::sqlite::{Db, DbError, now_ms};
use rusqlite::{Connection, OptionalExtension, params};

use super::{CartStore, StoreError};
use crate::domain::{Cart, new_cart_id};

/// Carts in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteCartStore {
    db: Db,
}

impl SqliteCartStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn backend(error: DbError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

fn read_cart(c: &Connection, column: &str, value: &str) -> Result<Option<Cart>, DbError> {
    let head = c
        .prepare_cached(&format!("SELECT id, owner_id, currency FROM carts WHERE {column} = ?1"))?
        .query_row(params![value], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?))
        })
        .optional()?;
    let Some((id, owner_id, currency)) = head else { return Ok(None) };
    let lines = c
        .prepare_cached("SELECT sku, quantity FROM cart_items WHERE cart_id = ?1 ORDER BY added_at, sku")?
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Cart { id, owner_id, currency, lines }))
}

fn insert_cart(c: &Connection, cart: &Cart) -> Result<(), DbError> {
    let now = now_ms();
    c.prepare_cached("INSERT INTO carts (id, owner_id, currency, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)")?
        .execute(params![cart.id, cart.owner_id, cart.currency, now])?;
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
    c.prepare_cached("UPDATE carts SET updated_at = ?2, abandoned_at = NULL WHERE id = ?1")?
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
                let cart = Cart { id: new_cart_id(), owner_id: Some(owner_id), currency, lines: Vec::new() };
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
                    let data = platform::contracts::order::CartAbandoned {
                        cart_id: cart.id.clone(),
                        owner_id: cart.owner_id.clone(),
                        lines: cart
                            .lines
                            .iter()
                            .map(|(sku, quantity)| platform::contracts::inventory::Line {
                                sku: sku.clone(),
                                quantity: *quantity,
                            })
                            .collect(),
                        idle_since: chrono::DateTime::from_timestamp_millis(*updated_at).unwrap_or_default(),
                    };
                    let event = platform::events::Event::new(
                        platform::contracts::order::CartAbandoned::KIND,
                        crate::NAME,
                        data,
                    )
                    .with_subject(cart.id.clone());
                    platform::sqlite::outbox_push(tx, &event)?;
                    tx.prepare_cached("UPDATE carts SET abandoned_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
                }
                Ok(idle.len())
            })
            .await
            .map_err(backend)
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
                        let cart =
                            Cart { id: new_cart_id(), owner_id: Some(owner_id.clone()), currency, lines: Vec::new() };
                        insert_cart(&tx, &cart)?;
                        cart
                    }
                };
                for (sku, quantity) in &guest.lines {
                    let had = mine.lines.iter().find(|(s, _)| s == sku).map_or(0, |(_, q)| *q);
                    let mut total = had.saturating_add(*quantity);
                    if let Some(cap) = caps.get(sku) {
                        total = total.min(*cap).max(had.min(*cap));
                    }
                    if total != had && !put_line(&tx, &mine.id, sku, total, max_lines)? {
                        // Dropping the transaction undoes the merge.
                        return Ok(Err(StoreError::TooManyLines(max_lines)));
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteCartStore) {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open_migrated(dir.path().join("order.db"), crate::MIGRATIONS).unwrap();
        (dir, SqliteCartStore::new(db))
    }

    #[tokio::test]
    async fn lines_are_set_removed_and_kept_in_the_order_added() {
        let (_dir, store) = store();
        let cart = Cart { id: "c1".into(), owner_id: None, currency: "USD".into(), lines: vec![] };
        store.create(&cart).await.unwrap();
        store.set_quantity("c1", "A", 2, 10).await.unwrap();
        store.set_quantity("c1", "B", 1, 10).await.unwrap();
        let cart = store.set_quantity("c1", "A", 5, 10).await.unwrap().unwrap();
        assert_eq!(cart.lines, vec![("A".into(), 5), ("B".into(), 1)]);
        let cart = store.set_quantity("c1", "A", 0, 10).await.unwrap().unwrap();
        assert_eq!(cart.lines, vec![("B".into(), 1)]);
        assert!(matches!(store.set_quantity("c1", "C", 1, 1).await, Err(StoreError::TooManyLines(1))));
        assert!(store.set_quantity("nope", "A", 1, 10).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_guest_cart_merges_into_the_users_cart_capped_by_stock_and_goes_away() {
        let (_dir, store) = store();
        let mine = store.user_cart("u1", "USD").await.unwrap();
        assert_eq!(store.user_cart("u1", "USD").await.unwrap().id, mine.id, "one cart per user");
        store.set_quantity(&mine.id, "A", 2, 10).await.unwrap();
        let guest = Cart {
            id: "g1".into(),
            owner_id: None,
            currency: "USD".into(),
            lines: vec![("A".into(), 3), ("B".into(), 4), ("C".into(), 1)],
        };
        store.create(&guest).await.unwrap();
        let caps = HashMap::from([("A".to_owned(), 4), ("B".to_owned(), 10)]);
        let merged = store.merge("g1", "u1", "USD", &caps, 10).await.unwrap().unwrap();
        assert_eq!(merged.id, mine.id);
        assert_eq!(merged.lines, vec![("A".into(), 4), ("B".into(), 4), ("C".into(), 1)]);
        assert!(store.get("g1").await.unwrap().is_none(), "the guest cart is gone");
        assert!(store.merge("g1", "u1", "USD", &caps, 10).await.unwrap().is_none());
        assert!(
            store.merge(&mine.id, "u2", "USD", &caps, 10).await.unwrap().is_none(),
            "a user's cart is not a guest's"
        );
    }
}
