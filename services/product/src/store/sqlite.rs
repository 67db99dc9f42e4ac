//! The embedded (SQLite) catalog store.

use async_trait::async_trait;
use platform::events::Event;
use platform::sqlite::{Db, DbError, now_ms, outbox_push};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{CategoryStore, ProductStore, StoreError};
use crate::domain::category::{Category, parents_first};
use crate::domain::product::{Product, Variant};

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
}

impl SqliteProductStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Fails unless the category exists and no SKU of `product` belongs to another product.
fn check_references(tx: &Transaction<'_>, product: &Product) -> Result<Result<(), StoreError>, DbError> {
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

fn write_product(tx: &Transaction<'_>, product: &Product) -> Result<(), DbError> {
    tx.prepare_cached(
        "INSERT INTO products (id, category_id, name, description, brand, price_amount, currency, attributes, images,
            in_stock, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET category_id = excluded.category_id, name = excluded.name,
            description = excluded.description, brand = excluded.brand, price_amount = excluded.price_amount,
            currency = excluded.currency, attributes = excluded.attributes, images = excluded.images,
            updated_at = excluded.updated_at",
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
        product.updated_at.timestamp_millis()
    ])?;
    tx.prepare_cached("DELETE FROM variants WHERE product_id = ?1")?.execute(params![product.id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO variants (sku, product_id, price_amount, attributes, position) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, variant) in product.variants.iter().enumerate() {
        insert.execute(params![
            variant.sku,
            product.id,
            variant.price.amount,
            json(&variant.attributes),
            position as i64
        ])?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("JSON columns serialize")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: String, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

#[async_trait]
impl ProductStore for SqliteProductStore {
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                let head = c
                    .prepare_cached(
                        "SELECT id, name, description, brand, category_id, price_amount, currency, images, attributes,
                            in_stock, created_at, updated_at FROM products WHERE id = ?1",
                    )?
                    .query_row(params![id], |r| {
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
                        })
                    })
                    .optional()?;
                let Some(mut product) = head else { return Ok(None) };
                let currency = product.price.currency.clone();
                product.variants = c
                    .prepare_cached(
                        "SELECT sku, price_amount, attributes FROM variants WHERE product_id = ?1 ORDER BY position",
                    )?
                    .query_map(params![id], |r| {
                        Ok(Variant {
                            sku: r.get(0)?,
                            price: platform::money::Money { amount: r.get(1)?, currency: currency.clone() },
                            attributes: parse_json(r.get(2)?, 2)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(product))
            })
            .await
            .map_err(backend)
    }

    async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError> {
        let (product, event) = (product.clone(), event.clone());
        self.db
            .transaction(move |tx| {
                if let Err(refused) = check_references(tx, &product)? {
                    return Ok(Err(refused));
                }
                write_product(tx, &product)?;
                outbox_push(tx, &event)?;
                Ok(Ok(()))
            })
            .await
            .map_err(backend)?
    }

    async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError> {
        let (product, event) = (product.clone(), event.clone());
        self.db
            .transaction(move |tx| {
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT 1 FROM products WHERE id = ?1")?
                    .query_row(params![product.id], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Ok(Ok(false));
                }
                if let Err(refused) = check_references(tx, &product)? {
                    return Ok(Err(refused));
                }
                write_product(tx, &product)?;
                outbox_push(tx, &event)?;
                Ok(Ok(true))
            })
            .await
            .map_err(backend)?
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
