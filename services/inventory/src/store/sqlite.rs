//! The embedded (SQLite) stock store.

use async_trait::async_trait;
use platform::sqlite::{Db, now_ms};
use rusqlite::{OptionalExtension, params};

use super::{StockStore, StoreError};
use crate::domain::Stock;

/// Stock in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStockStore {
    db: Db,
}

impl SqliteStockStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn backend(error: platform::sqlite::DbError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

fn read_stock(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stock> {
    Ok(Stock { on_hand: row.get(0)?, reserved: row.get(1)?, low_stock_threshold: row.get(2)? })
}

#[async_trait]
impl StockStore for SqliteStockStore {
    async fn get(&self, sku: &str) -> Result<Option<Stock>, StoreError> {
        let sku = sku.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached("SELECT on_hand, reserved, low_stock_threshold FROM stock WHERE sku = ?1")?
                    .query_row(params![sku], read_stock)
                    .optional()?)
            })
            .await
            .map_err(backend)
    }

    async fn set(&self, sku: &str, on_hand: i64, low_stock_threshold: Option<i64>) -> Result<Stock, StoreError> {
        let sku = sku.to_owned();
        self.db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "INSERT INTO stock (sku, on_hand, low_stock_threshold, updated_at) VALUES (?1, ?2, coalesce(?3, 0), ?4)
                     ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand,
                        low_stock_threshold = coalesce(?3, stock.low_stock_threshold), updated_at = excluded.updated_at
                     RETURNING on_hand, reserved, low_stock_threshold",
                )?
                .query_row(params![sku, on_hand, low_stock_threshold, now_ms()], read_stock)?)
            })
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stock_is_set_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("inventory.db")).unwrap();
        db.migrate(crate::MIGRATIONS).unwrap();
        let store = SqliteStockStore::new(db);
        assert_eq!(store.get("SKU-1").await.unwrap(), None);
        store.set("SKU-1", 10, Some(2)).await.unwrap();
        let stock = store.set("SKU-1", 7, None).await.unwrap();
        assert_eq!(stock, Stock { on_hand: 7, reserved: 0, low_stock_threshold: 2 });
        assert_eq!(store.get("SKU-1").await.unwrap().unwrap().available(), 7);
    }
}
