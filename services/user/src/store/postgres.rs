//! The PostgreSQL (RDS) user store.

use async_trait::async_trait;
use platform::auth::Role;
use platform::events::outbox::OutboxSignal;
use platform::postgres::outbox_push;
use platform::sqlite::Migration;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::{Claim, EventFactory, ResetRequest, StoreError, UserStore};
use crate::domain::{Account, Address, AddressInput, User};

/// The user service's PostgreSQL schema.
pub const PG_MIGRATIONS: &[Migration] = &[
    Migration {
        scope: crate::NAME,
        version: 1,
        name: "accounts",
        sql: include_str!("../../../../migrations/user/postgres/0001_accounts.sql"),
    },
    Migration {
        scope: crate::NAME,
        version: 2,
        name: "signing_keys",
        sql: include_str!("../../../../migrations/user/postgres/0002_signing_keys.sql"),
    },
    Migration {
        scope: crate::NAME,
        version: 3,
        name: "credentials_changed",
        sql: include_str!("../../../../migrations/user/postgres/0003_credentials_changed.sql"),
    },
    Migration {
        scope: crate::NAME,
        version: 4,
        name: "identity",
        sql: include_str!("../../../../migrations/user/postgres/0004_identity.sql"),
    },
];

/// Accounts in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgUserStore {
    pool: PgPool,
    signal: OutboxSignal,
}

impl PgUserStore {
    /// A store on `pool` (migrated with [`PG_MIGRATIONS`] and the platform's).
    pub fn new(pool: PgPool) -> Self {
        Self { pool, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each commit that wrote events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }
}

/// A failed insert of an account: the email is the only key a new account can collide on (its id
/// is a fresh UUID).
fn create_error(error: sqlx::Error) -> StoreError {
    if error.as_database_error().is_some_and(|e| e.is_unique_violation()) {
        StoreError::EmailTaken
    } else {
        StoreError::backend(error)
    }
}

fn role(value: &str) -> Result<Role, sqlx::Error> {
    match value {
        "admin" => Ok(Role::Admin),
        "customer" => Ok(Role::Customer),
        other => Err(sqlx::Error::Decode(format!("unknown role {other}").into())),
    }
}

/// Spends every outstanding reset token of `user_id` (its password changed, or its account was
/// claimed).
async fn spend_resets(c: &mut sqlx::PgConnection, user_id: &str, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(now_ms)
        .execute(&mut *c)
        .await
        .map_err(StoreError::backend)?;
    Ok(())
}

fn read_user(row: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role(row.try_get("role")?)?,
        created_at: chrono::DateTime::from_timestamp_millis(row.try_get("created_at")?).unwrap_or_default(),
    })
}

fn read_account(row: &PgRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        user: read_user(row)?,
        password_hash: row.try_get("password_hash")?,
        mfa_secret: row.try_get("mfa_secret")?,
        mfa_confirmed: row.try_get("mfa_confirmed")?,
        mfa_last_step: row.try_get("mfa_last_step")?,
        credentials_changed_at: row.try_get("credentials_changed_at")?,
        email_verified: row.try_get("email_verified")?,
        cognito_sub: row.try_get("cognito_sub")?,
    })
}

const ACCOUNT_BY_EMAIL: &str = "SELECT id, email, name, role, created_at, password_hash, mfa_secret, mfa_confirmed,
    mfa_last_step, credentials_changed_at, email_verified, cognito_sub FROM users WHERE email = $1";
const ACCOUNT_BY_COGNITO_SUB: &str = "SELECT id, email, name, role, created_at, password_hash, mfa_secret,
    mfa_confirmed, mfa_last_step, credentials_changed_at, email_verified, cognito_sub FROM users WHERE cognito_sub = $1";
const ACCOUNT_BY_ID: &str = "SELECT id, email, name, role, created_at, password_hash, mfa_secret, mfa_confirmed,
    mfa_last_step, credentials_changed_at, email_verified, cognito_sub FROM users WHERE id = $1";

#[async_trait]
impl UserStore for PgUserStore {
    async fn create(&self, a: &Account, events: &[platform::events::Event]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, mfa_secret, mfa_confirmed, mfa_last_step,
                email_verified, cognito_sub, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(&a.user.id)
        .bind(&a.user.email)
        .bind(&a.user.name)
        .bind(a.user.role.as_str())
        .bind(&a.password_hash)
        .bind(&a.mfa_secret)
        .bind(a.mfa_confirmed)
        .bind(a.mfa_last_step)
        .bind(a.email_verified)
        .bind(&a.cognito_sub)
        .bind(a.user.created_at.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(create_error)?;
        for event in events {
            outbox_push(&mut tx, event).await.map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        self.signal.wake_if(!events.is_empty());
        Ok(())
    }

    async fn by_cognito_sub(&self, sub: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(ACCOUNT_BY_COGNITO_SUB)
            .bind(sub)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.as_ref().map(read_account).transpose().map_err(StoreError::backend)
    }

    async fn verify_email(
        &self,
        user_id: &str,
        email: &str,
        event: &platform::events::Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let done = sqlx::query("UPDATE users SET email_verified = TRUE, updated_at = $3 WHERE id = $1 AND email = $2")
            .bind(user_id)
            .bind(email)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let changed = done.rows_affected() == 1;
        if changed {
            outbox_push(&mut tx, event).await.map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        self.signal.wake_if(changed);
        Ok(changed)
    }

    async fn request_verification(&self, user_id: &str, event: &platform::events::Event) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        // Locked, so a verification committing meanwhile is seen.
        let unverified = sqlx::query("SELECT 1 FROM users WHERE id = $1 AND NOT email_verified FOR UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::backend)?
            .is_some();
        if unverified {
            outbox_push(&mut tx, event).await.map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        self.signal.wake_if(unverified);
        Ok(unverified)
    }

    async fn link_cognito(
        &self,
        user_id: &str,
        sub: &str,
        claim: Option<Claim<'_>>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let query = match claim {
            Some(claim) => sqlx::query(
                "UPDATE users SET cognito_sub = $2, email_verified = TRUE, password_hash = $3, mfa_secret = NULL,
                    mfa_confirmed = FALSE, credentials_changed_at = $4, updated_at = $4
                 WHERE id = $1 AND (cognito_sub IS NULL OR cognito_sub = $2)",
            )
            .bind(user_id)
            .bind(sub)
            .bind(claim.password_hash)
            .bind(now_ms),
            None => sqlx::query(
                "UPDATE users SET cognito_sub = $2, email_verified = TRUE, updated_at = $3
                 WHERE id = $1 AND (cognito_sub IS NULL OR cognito_sub = $2)",
            )
            .bind(user_id)
            .bind(sub)
            .bind(now_ms),
        };
        let linked = query.execute(&mut *tx).await.map_err(create_error)?.rows_affected() == 1;
        if let (true, Some(claim)) = (linked, claim) {
            spend_resets(&mut tx, user_id, now_ms).await?;
            outbox_push(&mut tx, claim.verified).await.map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        self.signal.wake_if(linked && claim.is_some());
        Ok(linked)
    }

    async fn by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let row =
            sqlx::query(ACCOUNT_BY_EMAIL).bind(email).fetch_optional(&self.pool).await.map_err(StoreError::backend)?;
        row.as_ref().map(read_account).transpose().map_err(StoreError::backend)
    }

    async fn by_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(ACCOUNT_BY_ID).bind(id).fetch_optional(&self.pool).await.map_err(StoreError::backend)?;
        row.as_ref().map(read_account).transpose().map_err(StoreError::backend)
    }

    async fn rename(&self, id: &str, name: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET name = $2, updated_at = $3 WHERE id = $1 RETURNING id, email, name, role, created_at",
        )
        .bind(id)
        .bind(name)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        row.as_ref().map(read_user).transpose().map_err(StoreError::backend)
    }

    async fn set_mfa_secret(&self, id: &str, secret: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET mfa_secret = $2, mfa_confirmed = FALSE, updated_at = $3 WHERE id = $1 AND NOT mfa_confirmed",
        )
        .bind(id)
        .bind(secret)
        .bind(chrono::Utc::now().timestamp_millis())
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn use_mfa_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE users SET mfa_last_step = $2, mfa_confirmed = TRUE, updated_at = $3
             WHERE id = $1 AND mfa_secret IS NOT NULL AND mfa_last_step < $2",
        )
        .bind(id)
        .bind(step)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(result.rows_affected() == 1)
    }

    async fn addresses(&self, user_id: &str) -> Result<Vec<Address>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, line1, line2, city, region, postal_code, country FROM addresses
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter()
            .map(|row| {
                Ok(Address {
                    id: row.try_get("id")?,
                    address: AddressInput {
                        name: row.try_get("name")?,
                        line1: row.try_get("line1")?,
                        line2: row.try_get("line2")?,
                        city: row.try_get("city")?,
                        region: row.try_get("region")?,
                        postal_code: row.try_get("postal_code")?,
                        country: row.try_get("country")?,
                    },
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::backend)
    }

    async fn add_address(&self, user_id: &str, a: &Address) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO addresses (id, user_id, name, line1, line2, city, region, postal_code, country, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.id)
        .bind(user_id)
        .bind(&a.address.name)
        .bind(&a.address.line1)
        .bind(&a.address.line2)
        .bind(&a.address.city)
        .bind(&a.address.region)
        .bind(&a.address.postal_code)
        .bind(&a.address.country)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn delete_address(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM addresses WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(result.rows_affected() == 1)
    }

    async fn request_password_reset(
        &self,
        request: ResetRequest,
        make_event: EventFactory,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let user: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(&request.email)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let Some(user_id) = user else { return Ok(false) };
        sqlx::query("INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(&request.token_hash)
            .bind(&user_id)
            .bind(request.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        outbox_push(&mut tx, &make_event(&user_id)).await.map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        self.signal.wake();
        Ok(true)
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
        if let Some(user_id) = &user {
            sqlx::query(
                "UPDATE users SET password_hash = $2, credentials_changed_at = $3, updated_at = $3 WHERE id = $1",
            )
            .bind(user_id)
            .bind(password_hash)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
            spend_resets(&mut tx, user_id, now_ms).await?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(user)
    }

    async fn change_password(
        &self,
        user_id: &str,
        current_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $3, credentials_changed_at = $4, updated_at = $4
             WHERE id = $1 AND password_hash = $2",
        )
        .bind(user_id)
        .bind(current_hash)
        .bind(new_hash)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?
        .rows_affected()
            == 1;
        if changed {
            spend_resets(&mut tx, user_id, now_ms).await?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(changed)
    }

    async fn search(&self, query: &str, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
        let pattern =
            format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let rows = sqlx::query(
            "SELECT id, email, name, role, created_at FROM users
             WHERE (email LIKE $1 OR lower(name) LIKE $1) AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(pattern)
        .bind(after.unwrap_or_default())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::backend)?;
        rows.iter().map(read_user).collect::<Result<Vec<_>, _>>().map_err(StoreError::backend)
    }
}
