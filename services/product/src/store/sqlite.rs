//! The embedded (SQLite) catalog store.

use async_trait::async_trait;
use platform::sqlite::{Db, DbError, now_ms};
use rusqlite::params;

use super::{CategoryStore, StoreError};
use crate::domain::category::{Category, parents_first};

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
