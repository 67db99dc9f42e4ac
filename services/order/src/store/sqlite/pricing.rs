//! The embedded (SQLite) pricing store: shipping zones and promotions as JSON documents, and the
//! promotions' use counts (which placing an order changes in its own transaction).

use std::collections::HashMap;

use async_trait::async_trait;
use platform::sqlite::{Db, DbError};
use rusqlite::params;

use crate::domain::pricing::Usage;
use crate::domain::promotion::Promotion;
use crate::domain::shipping::Zone;
use crate::store::{EVERYONE, PricingStore, StoreError};

/// Zones, promotions and use counts in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqlitePricingStore {
    db: Db,
}

impl SqlitePricingStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

fn documents<T: serde::de::DeserializeOwned>(db_rows: Vec<String>) -> Result<Vec<T>, StoreError> {
    db_rows.iter().map(|body| serde_json::from_str(body).map_err(backend)).collect()
}

#[async_trait]
impl PricingStore for SqlitePricingStore {
    async fn zones(&self) -> Result<Vec<Zone>, StoreError> {
        let rows = self
            .db
            .read(|c| {
                let mut statement = c.prepare_cached("SELECT body FROM shipping_zones ORDER BY created_at, id")?;
                let rows = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn put_zone(&self, zone: &Zone) -> Result<(), StoreError> {
        let (id, body) = (zone.id.clone(), serde_json::to_string(zone).map_err(backend)?);
        let now = chrono::Utc::now().timestamp_micros();
        self.db
            .transaction(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO shipping_zones (id, body, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                )?
                .execute(params![id, body, now])?;
                Ok(())
            })
            .await
            .map_err(backend)
    }

    async fn delete_zone(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db
            .transaction(move |tx| {
                Ok(tx.prepare_cached("DELETE FROM shipping_zones WHERE id = ?1")?.execute(params![id])? > 0)
            })
            .await
            .map_err(backend)
    }

    async fn promotions(&self) -> Result<Vec<Promotion>, StoreError> {
        let rows = self
            .db
            .read(|c| {
                let mut statement = c.prepare_cached("SELECT body FROM promotions ORDER BY created_at, id")?;
                let rows = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(backend)?;
        documents(rows)
    }

    async fn put_promotion(&self, promotion: &Promotion, new: bool) -> Result<bool, StoreError> {
        let (id, code) = (promotion.id.clone(), promotion.code.clone());
        let body = serde_json::to_string(promotion).map_err(backend)?;
        let created = promotion.created_at.timestamp_micros();
        let written = self
            .db
            .transaction(move |tx| {
                let changed = if new {
                    tx.prepare_cached("INSERT INTO promotions (id, code, body, created_at) VALUES (?1, ?2, ?3, ?4)")?
                        .execute(params![id, code, body, created])?
                } else {
                    tx.prepare_cached("UPDATE promotions SET code = ?2, body = ?3 WHERE id = ?1")?
                        .execute(params![id, code, body])?
                };
                Ok(changed > 0)
            })
            .await;
        match written {
            Ok(found) => Ok(found),
            Err(error) if error.is_unique_violation() => {
                Err(StoreError::CodeTaken(promotion.code.clone().unwrap_or_default()))
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn delete_promotion(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db
            .transaction(move |tx| {
                tx.prepare_cached("DELETE FROM redemptions WHERE promotion_id = ?1")?.execute(params![id])?;
                Ok(tx.prepare_cached("DELETE FROM promotions WHERE id = ?1")?.execute(params![id])? > 0)
            })
            .await
            .map_err(backend)
    }

    async fn usage(&self, ids: &[String], customer: Option<&str>) -> Result<HashMap<String, Usage>, StoreError> {
        let (ids, customer) = (ids.to_vec(), customer.map(str::to_owned));
        self.db
            .read(move |c| {
                let count = |id: &str, who: &str| -> Result<u64, DbError> {
                    Ok(u64::try_from(super::orders::used(c, id, who)?).unwrap_or(0))
                };
                let mut usage = HashMap::with_capacity(ids.len());
                for id in &ids {
                    let total = count(id, EVERYONE)?;
                    let by_shopper = match &customer {
                        Some(who) => count(id, who)?,
                        None => 0,
                    };
                    usage.insert(id.clone(), Usage { total, by_shopper });
                }
                Ok(usage)
            })
            .await
            .map_err(backend)
    }
}
