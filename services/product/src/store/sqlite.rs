//! The embedded (SQLite) catalog store.

use async_trait::async_trait;
use platform::contracts::catalog::TaxCategory;
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::sqlite::{Db, DbError, now_ms, outbox_push};
use rusqlite::{Connection, OptionalExtension, params};

use super::{CategoryStore, ProductStore, StoreError};
use crate::domain::category::{Category, parents_first};
use crate::domain::product::{Product, Variant, next_revision};

/// Categories in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteCategoryStore {
    db: Db,
}

impl SqliteCategoryStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn backend(error: DbError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[async_trait]
impl CategoryStore for SqliteCategoryStore {
    async fn list(&self) -> Result<Vec<Category>, StoreError> {
        let categories = self
            .db
            .read(|c| {
                let mut select =
                    c.prepare_cached("SELECT id, name, parent_id, slug FROM categories ORDER BY position, name")?;
                let rows = select
                    .query_map([], |row| {
                        Ok(Category { id: row.get(0)?, name: row.get(1)?, parent_id: row.get(2)?, slug: row.get(3)? })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(backend)?;
        Ok(parents_first(categories))
    }

    async fn insert(&self, category: &Category) -> Result<(), StoreError> {
        let category = category.clone();
        let slug = category.slug.clone();
        let parent = category.parent_id.clone();
        self.db
            .transaction(move |tx| {
                let position: i64 = tx.query_row(
                    "SELECT count(*) FROM categories WHERE parent_id IS ?1",
                    params![category.parent_id],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO categories (id, name, slug, parent_id, position, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![category.id, category.name, category.slug, category.parent_id, position, now_ms()],
                )?;
                Ok(())
            })
            .await
            .map_err(|error| match &error {
                e if e.is_unique_violation() => StoreError::DuplicateSlug(slug),
                DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                {
                    StoreError::UnknownParent(parent.unwrap_or_default())
                }
                _ => backend(error),
            })
    }
}

/// Products in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteProductStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqliteProductStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each commit that wrote events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }
}

/// Fails unless the category exists and no SKU of `product` belongs to another product.
fn check_references(tx: &Connection, product: &Product) -> Result<Result<(), StoreError>, DbError> {
    let category: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM categories WHERE id = ?1")?
        .query_row(params![product.category_id], |r| r.get(0))
        .optional()?;
    if category.is_none() {
        return Ok(Err(StoreError::UnknownCategory(product.category_id.clone())));
    }
    let mut owner = tx.prepare_cached("SELECT product_id FROM variants WHERE sku = ?1")?;
    for variant in &product.variants {
        let found: Option<String> = owner.query_row(params![variant.sku], |r| r.get(0)).optional()?;
        if found.is_some_and(|id| id != product.id) {
            return Ok(Err(StoreError::DuplicateSku(variant.sku.clone())));
        }
    }
    Ok(Ok(()))
}

/// The revision product `id` has now (0 when it does not exist).
fn revision_of(tx: &Connection, id: &str) -> rusqlite::Result<i64> {
    Ok(tx
        .prepare_cached("SELECT revision FROM products WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn write_product(tx: &Connection, product: &Product) -> Result<(), DbError> {
    let revision = next_revision(revision_of(tx, &product.id)?);
    tx.prepare_cached(
        "INSERT INTO products (id, category_id, name, description, brand, price_amount, currency, attributes, images,
            in_stock, created_at, updated_at, revision, tax_category)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (id) DO UPDATE SET category_id = excluded.category_id, name = excluded.name,
            description = excluded.description, brand = excluded.brand, price_amount = excluded.price_amount,
            currency = excluded.currency, attributes = excluded.attributes, images = excluded.images,
            updated_at = excluded.updated_at, revision = excluded.revision, tax_category = excluded.tax_category",
    )?
    .execute(params![
        product.id,
        product.category_id,
        product.name,
        product.description,
        product.brand,
        product.price.amount,
        product.price.currency,
        json(&product.attributes),
        json(&product.images),
        product.in_stock,
        product.created_at.timestamp_millis(),
        product.updated_at.timestamp_millis(),
        revision,
        product.tax_category.as_str()
    ])?;
    tx.prepare_cached("DELETE FROM variants WHERE product_id = ?1")?.execute(params![product.id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO variants (sku, product_id, price_amount, attributes, position, weight_grams)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (position, variant) in product.variants.iter().enumerate() {
        insert.execute(params![
            variant.sku,
            product.id,
            variant.price.amount,
            json(&variant.attributes),
            position as i64,
            variant.weight_grams
        ])?;
    }
    let in_stock = stocked(tx, &product.id)?;
    tx.prepare_cached("UPDATE products SET in_stock = ?2 WHERE id = ?1")?.execute(params![product.id, in_stock])?;
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("JSON columns serialize")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: String, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

const PRODUCT_COLUMNS: &str = "id, name, description, brand, category_id, price_amount, currency, images, attributes,
    in_stock, created_at, updated_at, revision, tax_category";

fn product_head(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        brand: r.get(3)?,
        category_id: r.get(4)?,
        price: platform::money::Money { amount: r.get(5)?, currency: r.get(6)? },
        images: parse_json(r.get(7)?, 7)?,
        attributes: parse_json(r.get(8)?, 8)?,
        variants: Vec::new(),
        in_stock: r.get(9)?,
        created_at: chrono::DateTime::from_timestamp_millis(r.get(10)?).unwrap_or_default(),
        updated_at: chrono::DateTime::from_timestamp_millis(r.get(11)?).unwrap_or_default(),
        revision: r.get(12)?,
        tax_category: TaxCategory::parse(&r.get::<_, String>(13)?).unwrap_or_default(),
    })
}

fn read_variants(c: &Connection, product: &mut Product) -> rusqlite::Result<()> {
    let currency = product.price.currency.clone();
    product.variants = c
        .prepare_cached(
            "SELECT sku, price_amount, attributes, weight_grams FROM variants WHERE product_id = ?1 ORDER BY position",
        )?
        .query_map(params![product.id], |r| {
            Ok(Variant {
                sku: r.get(0)?,
                price: platform::money::Money { amount: r.get(1)?, currency: currency.clone() },
                attributes: parse_json(r.get(2)?, 2)?,
                weight_grams: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(())
}

fn read_product(c: &Connection, id: &str) -> Result<Option<Product>, DbError> {
    let head = c
        .prepare_cached(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?1"))?
        .query_row(params![id], product_head)
        .optional()?;
    let Some(mut product) = head else { return Ok(None) };
    read_variants(c, &mut product)?;
    Ok(Some(product))
}

/// Whether any SKU of product `id` has stock, by the recorded levels.
fn stocked(c: &Connection, id: &str) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM variants v JOIN stock_levels s ON s.sku = v.sku
            WHERE v.product_id = ?1 AND s.available > 0)",
    )?
    .query_row(params![id], |r| r.get(0))
}

/// Writes `product` (inserting or replacing it) and its event, unless a reference is missing.
fn upsert(tx: &Connection, product: &Product, event: &Event) -> Result<Result<(), StoreError>, DbError> {
    if let Err(refused) = check_references(tx, product)? {
        return Ok(Err(refused));
    }
    write_product(tx, product)?;
    outbox_push(tx, event)?;
    Ok(Ok(()))
}

/// Records `available` units of `sku` at `version` unless a later level is recorded; the product
/// holding the SKU when its `in_stock` changed by it.
fn record_level(tx: &Connection, sku: &str, available: i64, version: i64) -> Result<Option<Product>, DbError> {
    let recorded = tx
        .prepare_cached(
            "INSERT INTO stock_levels (sku, available, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (sku) DO UPDATE SET available = excluded.available, version = excluded.version
             WHERE excluded.version >= stock_levels.version",
        )?
        .execute(params![sku, available, version])?;
    if recorded == 0 {
        // An older level than the one recorded: nothing changes.
        return Ok(None);
    }
    let owner: Option<(String, bool)> = tx
        .prepare_cached(
            "SELECT p.id, p.in_stock FROM variants v JOIN products p ON p.id = v.product_id WHERE v.sku = ?1",
        )?
        .query_row(params![sku], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, was)) = owner else { return Ok(None) };
    let now = stocked(tx, &id)?;
    if now == was {
        return Ok(None);
    }
    let revision = next_revision(revision_of(tx, &id)?);
    tx.prepare_cached("UPDATE products SET in_stock = ?2, revision = ?3 WHERE id = ?1")?
        .execute(params![id, now, revision])?;
    read_product(tx, &id)
}

#[async_trait]
impl ProductStore for SqliteProductStore {
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let id = id.to_owned();
        self.db.read(move |c| read_product(c, &id)).await.map_err(backend)
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Product>, StoreError> {
        let ids = ids.to_vec();
        self.db
            .read(move |c| {
                let mut found = Vec::with_capacity(ids.len());
                for id in &ids {
                    found.extend(read_product(c, id)?);
                }
                Ok(found)
            })
            .await
            .map_err(backend)
    }

    async fn product_ids_of(&self, skus: &[String]) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let skus = skus.to_vec();
        self.db
            .read(move |c| {
                let mut select = c.prepare_cached("SELECT product_id FROM variants WHERE sku = ?1")?;
                let mut found = std::collections::HashMap::with_capacity(skus.len());
                for sku in skus {
                    if let Some(id) = select.query_row(params![sku], |r| r.get::<_, String>(0)).optional()? {
                        found.insert(sku, id);
                    }
                }
                Ok(found)
            })
            .await
            .map_err(backend)
    }

    async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError> {
        let (product, event) = (product.clone(), event.clone());
        let written = self.db.transaction(move |tx| upsert(tx, &product, &event)).await.map_err(backend)?;
        self.signal.wake_if(written.is_ok());
        written
    }

    async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError> {
        let (product, event) = (product.clone(), event.clone());
        let replaced = self
            .db
            .transaction(move |tx| {
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT 1 FROM products WHERE id = ?1")?
                    .query_row(params![product.id], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Ok(Ok(false));
                }
                Ok(upsert(tx, &product, &event)?.map(|()| true))
            })
            .await
            .map_err(backend)?;
        self.signal.wake_if(matches!(replaced, Ok(true)));
        replaced
    }

    async fn delete(&self, id: &str, event: &Event) -> Result<bool, StoreError> {
        let (id, event) = (id.to_owned(), event.clone());
        self.db
            .transaction(move |tx| {
                let deleted = tx.prepare_cached("DELETE FROM products WHERE id = ?1")?.execute(params![id])? == 1;
                if deleted {
                    outbox_push(tx, &event)?;
                }
                Ok(deleted)
            })
            .await
            .map_err(backend)
            .inspect(|&deleted| self.signal.wake_if(deleted))
    }

    async fn upsert_many(&self, items: Vec<(Product, Event)>) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        // One transaction for the batch (fast), each product behind a savepoint (whole or nothing).
        self.db
            .transaction(move |tx| {
                let mut outcomes = Vec::with_capacity(items.len());
                for (product, event) in &items {
                    tx.execute_batch("SAVEPOINT product")?;
                    match upsert(tx, product, event) {
                        Ok(outcome) => {
                            // A refused product wrote nothing; release either way.
                            tx.execute_batch("RELEASE product")?;
                            outcomes.push(outcome);
                        }
                        Err(error) => {
                            tx.execute_batch("ROLLBACK TO product; RELEASE product")?;
                            return Err(error);
                        }
                    }
                }
                Ok(outcomes)
            })
            .await
            .map_err(backend)
            .inspect(|outcomes| self.signal.wake_if(outcomes.iter().any(Result::is_ok)))
    }

    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<Product>, StoreError> {
        let after = after.unwrap_or_default().to_owned();
        self.db
            .read(move |c| {
                let mut products = c
                    .prepare_cached(&format!(
                        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id > ?1 ORDER BY id LIMIT ?2"
                    ))?
                    .query_map(params![after, limit as i64], product_head)?
                    .collect::<Result<Vec<_>, _>>()?;
                for product in &mut products {
                    read_variants(c, product)?;
                }
                Ok(products)
            })
            .await
            .map_err(backend)
    }

    async fn set_availability(&self, sku: &str, available: i64, version: i64) -> Result<Option<Product>, StoreError> {
        let sku = sku.to_owned();
        self.db.transaction(move |tx| record_level(tx, &sku, available, version)).await.map_err(backend)
    }

    async fn set_availability_many(&self, levels: &[(String, i64, i64)]) -> Result<Vec<Product>, StoreError> {
        let levels = levels.to_vec();
        // One transaction for them all (a delivery of the indexer's, a batch of the seeder's).
        self.db
            .transaction(move |tx| {
                let mut changed: Vec<Product> = Vec::new();
                for (sku, available, version) in &levels {
                    changed.extend(record_level(tx, sku, *available, *version)?);
                }
                Ok(super::last_of_each(changed))
            })
            .await
            .map_err(backend)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| Ok(c.prepare_cached("SELECT count(*) FROM products")?.query_row([], |r| r.get::<_, i64>(0))?))
            .await
            .map(|n| n as u64)
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(id: &str, parent: Option<&str>) -> Category {
        Category { id: id.into(), name: id.to_uppercase(), parent_id: parent.map(Into::into), slug: id.into() }
    }

    #[tokio::test]
    async fn categories_round_trip_parents_first_and_slugs_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("product.db")).unwrap();
        db.migrate(crate::MIGRATIONS).unwrap();
        let store = SqliteCategoryStore::new(db);
        store.insert(&category("electronics", None)).await.unwrap();
        store.insert(&category("phones", Some("electronics"))).await.unwrap();
        store.insert(&category("books", None)).await.unwrap();
        let ids: Vec<String> = store.list().await.unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["electronics", "books", "phones"]);
        let mut duplicate = category("other", None);
        duplicate.slug = "phones".into();
        assert!(matches!(store.insert(&duplicate).await, Err(StoreError::DuplicateSlug(s)) if s == "phones"));
        assert!(matches!(
            store.insert(&category("orphan", Some("missing"))).await,
            Err(StoreError::UnknownParent(p)) if p == "missing"
        ));
    }
}
