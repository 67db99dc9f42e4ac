//! The embedded (SQLite) user store.

use async_trait::async_trait;
use platform::sqlite::{Db, outbox_push};
use rusqlite::{OptionalExtension, params};

use super::{EventFactory, ResetRequest, StoreError, UserStore};

/// Accounts in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    db: Db,
}

impl SqliteUserStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn request_password_reset(
        &self,
        request: ResetRequest,
        make_event: EventFactory,
    ) -> Result<bool, StoreError> {
        self.db
            .transaction(move |tx| {
                let user: Option<String> = tx
                    .prepare_cached("SELECT id FROM users WHERE email = ?1")?
                    .query_row(params![request.email], |r| r.get(0))
                    .optional()?;
                let Some(user_id) = user else { return Ok(false) };
                tx.prepare_cached("INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)")?
                    .execute(params![request.token_hash, user_id, request.expires_at])?;
                outbox_push(tx, &make_event(&user_id))?;
                Ok(true)
            })
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }
}
