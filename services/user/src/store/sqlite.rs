//! The embedded (SQLite) user and session stores.

use async_trait::async_trait;
use platform::auth::Role;
use platform::events::outbox::OutboxSignal;
use platform::sqlite::{Db, DbError, now_ms, outbox_push};
use rusqlite::{OptionalExtension, Row, params};

use super::{Claim, EventFactory, ResetRequest, Rotation, Session, SessionStore, StoreError, UserStore};
use crate::domain::{Account, Address, AddressInput, User};

/// Accounts in the service's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    db: Db,
    signal: OutboxSignal,
}

impl SqliteUserStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each commit that wrote events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }
}

/// A failed insert of an account: the email is the only key a new account can collide on (its id
/// is a fresh UUID).
fn create_error(error: DbError) -> StoreError {
    if error.is_unique_violation() { StoreError::EmailTaken } else { StoreError::backend(error) }
}

fn role(value: String) -> rusqlite::Result<Role> {
    match value.as_str() {
        "admin" => Ok(Role::Admin),
        "customer" => Ok(Role::Customer),
        _ => Err(rusqlite::Error::InvalidColumnType(0, "role".into(), rusqlite::types::Type::Text)),
    }
}

fn timestamp(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

const ACCOUNT_COLUMNS: &str = "id, email, name, role, created_at, password_hash, mfa_secret, mfa_confirmed, mfa_last_step, credentials_changed_at, \
     email_verified, cognito_sub";

fn read_account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user: User {
            id: row.get(0)?,
            email: row.get(1)?,
            name: row.get(2)?,
            role: role(row.get(3)?)?,
            created_at: timestamp(row.get(4)?),
        },
        password_hash: row.get(5)?,
        mfa_secret: row.get(6)?,
        mfa_confirmed: row.get(7)?,
        mfa_last_step: row.get(8)?,
        credentials_changed_at: row.get(9)?,
        email_verified: row.get(10)?,
        cognito_sub: row.get(11)?,
    })
}

/// Spends every outstanding reset token of `user_id` (its password changed, or its account was
/// claimed).
fn spend_resets(tx: &rusqlite::Connection, user_id: &str, now_ms: i64) -> Result<(), DbError> {
    tx.prepare_cached("UPDATE password_resets SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL")?
        .execute(params![user_id, now_ms])?;
    Ok(())
}

fn read_user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role: role(row.get(3)?)?,
        created_at: timestamp(row.get(4)?),
    })
}

fn read_address(row: &Row<'_>) -> rusqlite::Result<Address> {
    Ok(Address {
        id: row.get(0)?,
        address: AddressInput {
            name: row.get(1)?,
            line1: row.get(2)?,
            line2: row.get(3)?,
            city: row.get(4)?,
            region: row.get(5)?,
            postal_code: row.get(6)?,
            country: row.get(7)?,
        },
    })
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn create(&self, account: &Account, events: &[platform::events::Event]) -> Result<(), StoreError> {
        let (a, events) = (account.clone(), events.to_vec());
        self.db
            .transaction(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO users (id, email, name, role, password_hash, mfa_secret, mfa_confirmed, mfa_last_step,
                        email_verified, cognito_sub, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                )?
                .execute(params![
                    a.user.id,
                    a.user.email,
                    a.user.name,
                    a.user.role.as_str(),
                    a.password_hash,
                    a.mfa_secret,
                    a.mfa_confirmed,
                    a.mfa_last_step,
                    a.email_verified,
                    a.cognito_sub,
                    a.user.created_at.timestamp_millis()
                ])?;
                for event in &events {
                    outbox_push(tx, event)?;
                }
                Ok(!events.is_empty())
            })
            .await
            .map_err(create_error)
            .map(|wrote| self.signal.wake_if(wrote))
    }

    async fn by_cognito_sub(&self, sub: &str) -> Result<Option<Account>, StoreError> {
        let sub = sub.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE cognito_sub = ?1"))?
                    .query_row(params![sub], read_account)
                    .optional()?)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn verify_email(
        &self,
        user_id: &str,
        email: &str,
        event: &platform::events::Event,
    ) -> Result<bool, StoreError> {
        let (user_id, email, event) = (user_id.to_owned(), email.to_owned(), event.clone());
        self.db
            .transaction(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE users SET email_verified = 1, updated_at = ?3 WHERE id = ?1 AND email = ?2",
                    )?
                    .execute(params![user_id, email, now_ms()])?;
                if changed == 1 {
                    outbox_push(tx, &event)?;
                }
                Ok(changed == 1)
            })
            .await
            .map_err(StoreError::backend)
            .inspect(|&wrote| self.signal.wake_if(wrote))
    }

    async fn request_verification(&self, user_id: &str, event: &platform::events::Event) -> Result<bool, StoreError> {
        let (user_id, event) = (user_id.to_owned(), event.clone());
        self.db
            .transaction(move |tx| {
                let unverified = tx
                    .prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND NOT email_verified")?
                    .query_row(params![user_id], |_| Ok(()))
                    .optional()?
                    .is_some();
                if unverified {
                    outbox_push(tx, &event)?;
                }
                Ok(unverified)
            })
            .await
            .map_err(StoreError::backend)
            .inspect(|&wrote| self.signal.wake_if(wrote))
    }

    async fn link_cognito(
        &self,
        user_id: &str,
        sub: &str,
        claim: Option<Claim<'_>>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (user_id, sub) = (user_id.to_owned(), sub.to_owned());
        let claim = claim.map(|c| (c.password_hash.to_owned(), c.verified.clone()));
        let claimed = claim.is_some();
        self.db
            .transaction(move |tx| {
                let changed = match &claim {
                    Some((hash, _)) => tx
                        .prepare_cached(
                            "UPDATE users SET cognito_sub = ?2, email_verified = 1, password_hash = ?3,
                                mfa_secret = NULL, mfa_confirmed = 0, credentials_changed_at = ?4, updated_at = ?4
                             WHERE id = ?1 AND (cognito_sub IS NULL OR cognito_sub = ?2)",
                        )?
                        .execute(params![user_id, sub, hash, now_ms])?,
                    None => tx
                        .prepare_cached(
                            "UPDATE users SET cognito_sub = ?2, email_verified = 1, updated_at = ?3
                             WHERE id = ?1 AND (cognito_sub IS NULL OR cognito_sub = ?2)",
                        )?
                        .execute(params![user_id, sub, now_ms])?,
                };
                if let (1, Some((_, verified))) = (changed, &claim) {
                    spend_resets(tx, &user_id, now_ms)?;
                    outbox_push(tx, verified)?;
                }
                Ok(changed == 1)
            })
            .await
            .map_err(create_error)
            .inspect(|&linked| self.signal.wake_if(linked && claimed))
    }

    async fn by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let email = email.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE email = ?1"))?
                    .query_row(params![email], read_account)
                    .optional()?)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn by_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let id = id.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"))?
                    .query_row(params![id], read_account)
                    .optional()?)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn rename(&self, id: &str, name: &str) -> Result<Option<User>, StoreError> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1
                     RETURNING id, email, name, role, created_at",
                )?
                .query_row(params![id, name, now_ms()], read_user)
                .optional()?)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn set_mfa_secret(&self, id: &str, secret: &str) -> Result<(), StoreError> {
        let (id, secret) = (id.to_owned(), secret.to_owned());
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE users SET mfa_secret = ?2, mfa_confirmed = 0, updated_at = ?3 WHERE id = ?1 AND mfa_confirmed = 0",
                )?
                .execute(params![id, secret, now_ms()])?;
                Ok(())
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn use_mfa_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db
            .call(move |c| {
                Ok(c.prepare_cached(
                    "UPDATE users SET mfa_last_step = ?2, mfa_confirmed = 1, updated_at = ?3
                     WHERE id = ?1 AND mfa_secret IS NOT NULL AND mfa_last_step < ?2",
                )?
                .execute(params![id, step, now_ms()])?
                    == 1)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn addresses(&self, user_id: &str) -> Result<Vec<Address>, StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT id, name, line1, line2, city, region, postal_code, country FROM addresses
                     WHERE user_id = ?1 ORDER BY created_at, id",
                )?
                .query_map(params![user_id], read_address)?
                .collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn add_address(&self, user_id: &str, address: &Address) -> Result<(), StoreError> {
        let (user_id, a) = (user_id.to_owned(), address.clone());
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO addresses (id, user_id, name, line1, line2, city, region, postal_code, country, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    a.id,
                    user_id,
                    a.address.name,
                    a.address.line1,
                    a.address.line2,
                    a.address.city,
                    a.address.region,
                    a.address.postal_code,
                    a.address.country,
                    now_ms()
                ])?;
                Ok(())
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn delete_address(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.db
            .call(move |c| {
                Ok(c.prepare_cached("DELETE FROM addresses WHERE id = ?1 AND user_id = ?2")?
                    .execute(params![id, user_id])?
                    == 1)
            })
            .await
            .map_err(StoreError::backend)
    }

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
            .map_err(StoreError::backend)
            .inspect(|&wrote| self.signal.wake_if(wrote))
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let (token_hash, password_hash) = (token_hash.to_owned(), password_hash.to_owned());
        self.db
            .transaction(move |tx| {
                let user: Option<String> = tx
                    .prepare_cached(
                        "UPDATE password_resets SET used_at = ?2
                         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
                    )?
                    .query_row(params![token_hash, now_ms], |r| r.get(0))
                    .optional()?;
                if let Some(user_id) = &user {
                    tx.prepare_cached(
                        "UPDATE users SET password_hash = ?2, credentials_changed_at = ?3, updated_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![user_id, password_hash, now_ms])?;
                    // Every other outstanding reset token of the account dies with this one.
                    spend_resets(tx, user_id, now_ms)?;
                }
                Ok(user)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn change_password(
        &self,
        user_id: &str,
        current_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (user_id, current_hash, new_hash) = (user_id.to_owned(), current_hash.to_owned(), new_hash.to_owned());
        self.db
            .transaction(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE users SET password_hash = ?3, credentials_changed_at = ?4, updated_at = ?4
                         WHERE id = ?1 AND password_hash = ?2",
                    )?
                    .execute(params![user_id, current_hash, new_hash, now_ms])?;
                if changed == 1 {
                    spend_resets(tx, &user_id, now_ms)?;
                }
                Ok(changed == 1)
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn search(&self, query: &str, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
        // SQLite's lower() and LIKE fold ASCII only; fold in Rust so "émile" finds "ÉMILE".
        let query = query.to_lowercase();
        let after = after.unwrap_or_default().to_owned();
        self.db
            .read(move |c| {
                let mut select =
                    c.prepare_cached("SELECT id, email, name, role, created_at FROM users WHERE id > ?1 ORDER BY id")?;
                let mut rows = select.query(params![after])?;
                let mut found = Vec::new();
                while found.len() < limit {
                    let Some(row) = rows.next()? else { break };
                    let user = read_user(row)?;
                    if user.email.to_lowercase().contains(&query) || user.name.to_lowercase().contains(&query) {
                        found.push(user);
                    }
                }
                Ok(found)
            })
            .await
            .map_err(StoreError::backend)
    }
}

/// Sessions in the service's SQLite database (the embedded mode).
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    db: Db,
}

impl SqliteSessionStore {
    /// A store on `db` (migrated with the service's migrations).
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn start(&self, session: &Session, token_hash: &str, expires_at: i64) -> Result<(), StoreError> {
        let (s, token_hash) = (session.clone(), token_hash.to_owned());
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, amr, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![token_hash, s.family_id, s.user_id, s.amr_text(), expires_at])?;
                Ok(())
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn rotate(
        &self,
        presented: &str,
        next: &str,
        next_expires_at: i64,
        now: i64,
        grace_ms: i64,
    ) -> Result<Rotation, StoreError> {
        let (presented, next) = (presented.to_owned(), next.to_owned());
        self.db
            .transaction(move |tx| {
                let row: Option<(String, String, String, i64, Option<i64>, bool)> = tx
                    .prepare_cached(
                        "SELECT t.family_id, t.user_id, t.amr, t.expires_at, t.spent_at, r.family_id IS NOT NULL
                         FROM refresh_tokens t LEFT JOIN revoked_families r ON r.family_id = t.family_id
                         WHERE t.token_hash = ?1",
                    )?
                    .query_row(params![presented], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                    .optional()?;
                let Some((family_id, user_id, amr, expires_at, spent_at, revoked)) = row else {
                    return Ok(Rotation::Invalid);
                };
                if revoked {
                    return Ok(Rotation::Invalid);
                }
                if let Some(spent_at) = spent_at {
                    // Presented again within the grace window, with the same successor (two tabs,
                    // a retry after a lost answer): that successor again, if it is still live.
                    if now - spent_at <= grace_ms {
                        let live: Option<i64> = tx
                            .prepare_cached(
                                "SELECT 1 FROM refresh_tokens
                                 WHERE token_hash = ?1 AND family_id = ?2 AND spent_at IS NULL AND expires_at > ?3",
                            )?
                            .query_row(params![next, family_id, now], |r| r.get(0))
                            .optional()?;
                        if live.is_some() {
                            return Ok(Rotation::Rotated(Session { family_id, user_id, amr: Session::parse_amr(&amr) }));
                        }
                    }
                    tx.prepare_cached("INSERT OR IGNORE INTO revoked_families (family_id, revoked_at) VALUES (?1, ?2)")?
                        .execute(params![family_id, now])?;
                    return Ok(Rotation::Reused { family_id });
                }
                if expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                tx.prepare_cached("UPDATE refresh_tokens SET spent_at = ?2 WHERE token_hash = ?1")?
                    .execute(params![presented, now])?;
                tx.prepare_cached(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, amr, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![next, family_id, user_id, amr, next_expires_at])?;
                Ok(Rotation::Rotated(Session { family_id, user_id, amr: Session::parse_amr(&amr) }))
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn revoke(&self, presented: &str) -> Result<(), StoreError> {
        let presented = presented.to_owned();
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at)
                     SELECT family_id, ?2 FROM refresh_tokens WHERE token_hash = ?1",
                )?
                .execute(params![presented, now_ms()])?;
                Ok(())
            })
            .await
            .map_err(StoreError::backend)
    }

    async fn revoke_user(&self, user_id: &str) -> Result<(), StoreError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |c| {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at)
                     SELECT DISTINCT family_id, ?2 FROM refresh_tokens WHERE user_id = ?1",
                )?
                .execute(params![user_id, now_ms()])?;
                Ok(())
            })
            .await
            .map_err(StoreError::backend)
    }
}
