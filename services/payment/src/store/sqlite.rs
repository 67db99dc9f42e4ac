//! The embedded (SQLite) payment store.

use async_trait::async_trait;
use platform::sqlite::{Db, now_ms};
use rusqlite::params;

use super::{StoreError, WebhookStore};

/// Payment data in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteWebhookStore {
    db: Db,
}

impl SqliteWebhookStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl WebhookStore for SqliteWebhookStore {
    async fn record(&self, provider: &str, event_id: &str, event_type: &str) -> Result<bool, StoreError> {
        let (provider, event_id, event_type) = (provider.to_owned(), event_id.to_owned(), event_type.to_owned());
        self.db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_events (provider, event_id, event_type, received_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![provider, event_id, event_type, now_ms()])?
                    == 1)
            })
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }
}
