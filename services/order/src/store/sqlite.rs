//! The embedded (SQLite) cart store.

use async_trait::async_trait;
use platform::sqlite::{Db, now_ms};
use rusqlite::{OptionalExtension, params};

use super::{CartStore, StoreError};
use crate::domain::Cart;

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

fn backend(error: platform::sqlite::DbError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[async_trait]
impl CartStore for SqliteCartStore {
    async fn create(&self, cart: &Cart) -> Result<(), StoreError> {
        let cart = cart.clone();
        self.db
            .transaction(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO carts (id, owner_id, currency, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![cart.id, cart.owner_id, cart.currency, now],
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO cart_items (cart_id, sku, quantity, added_at) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (sku, quantity) in &cart.lines {
                    insert.execute(params![cart.id, sku, quantity, now])?;
                }
                Ok(())
            })
            .await
            .map_err(backend)
    }

    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                let head = c
                    .prepare_cached("SELECT owner_id, currency FROM carts WHERE id = ?1")?
                    .query_row(params![id], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?)))
                    .optional()?;
                let Some((owner_id, currency)) = head else { return Ok(None) };
                let lines = c
                    .prepare_cached("SELECT sku, quantity FROM cart_items WHERE cart_id = ?1 ORDER BY added_at, sku")?
                    .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Cart { id, owner_id, currency, lines }))
            })
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cart_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("order.db")).unwrap();
        db.migrate(crate::MIGRATIONS).unwrap();
        let store = SqliteCartStore::new(db);
        let cart = Cart { id: "c1".into(), owner_id: None, currency: "USD".into(), lines: vec![("A".into(), 2)] };
        store.create(&cart).await.unwrap();
        assert_eq!(store.get("c1").await.unwrap(), Some(cart));
        assert_eq!(store.get("c2").await.unwrap(), None);
    }
}
