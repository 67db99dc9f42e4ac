//! PostgreSQL data access (sqlx): the pool, the migration runner (scoped like the SQLite one, and
//! safe when several tasks start at once), and the outbox/inbox helpers for a service's own
//! transactions.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use crate::events::Event;
use crate::events::bus::BusError;
use crate::events::outbox::OutboxStore;
use crate::http::ops::ReadinessCheck;
use crate::sqlite::Migration;

/// The platform's own tables in every PostgreSQL service schema.
pub const PLATFORM_MIGRATIONS: &[Migration] = &[Migration {
    scope: "platform",
    version: 1,
    name: "outbox_inbox",
    sql: include_str!("../../../migrations/platform/postgres/0001_outbox_inbox.sql"),
}];

/// Connects a pool of at most `max_connections` to `url`.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url.expose_secret())
        .await
}

/// Applies every migration not applied yet, in order, each in its own transaction, holding an
/// advisory lock so concurrent starters wait for each other.
pub async fn migrate(pool: &PgPool, migrations: &[Migration]) -> Result<usize, sqlx::Error> {
    const LOCK: i64 = 0x5348_4f50; // "SHOP"
    // Under the lock too: two concurrent `CREATE TABLE IF NOT EXISTS` can both miss the table and
    // one then fails on the catalog's unique index.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS _migrations (
            scope TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (scope, version))",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut sorted = migrations.to_vec();
    sorted.sort_by_key(|m| (m.scope, m.version));
    let mut applied = 0;
    for migration in sorted {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(&mut *tx).await?;
        let done: Option<i32> = sqlx::query_scalar("SELECT 1 FROM _migrations WHERE scope = $1 AND version = $2")
            .bind(migration.scope)
            .bind(migration.version as i32)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO _migrations (scope, version, name) VALUES ($1, $2, $3)")
            .bind(migration.scope)
            .bind(migration.version as i32)
            .bind(migration.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied += 1;
    }
    Ok(applied)
}

/// Adds `event` to the outbox inside the caller's transaction.
pub async fn outbox_push(tx: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (event_id, body) VALUES ($1, $2)")
        .bind(&event.id)
        .bind(event.to_json())
        .execute(tx)
        .await?;
    Ok(())
}

/// Records that `consumer` applied `event_id` inside the caller's transaction; `false` when it was
/// applied before.
pub async fn inbox_claim(tx: &mut PgConnection, consumer: &str, event_id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(consumer)
        .bind(event_id)
        .execute(tx)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The outbox of a PostgreSQL service schema.
#[derive(Debug, Clone)]
pub struct PgOutbox(pub PgPool);

fn bus_error(error: sqlx::Error) -> BusError {
    BusError::Outbox(Box::new(error))
}

#[async_trait]
impl OutboxStore for PgOutbox {
    async fn fetch(&self, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
        sqlx::query_as("SELECT seq, body FROM outbox ORDER BY seq LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.0)
            .await
            .map_err(bus_error)
    }

    async fn delete(&self, seqs: &[i64]) -> Result<(), BusError> {
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)").bind(seqs).execute(&self.0).await.map_err(bus_error)?;
        Ok(())
    }
}

/// `/ready` check of a pool.
#[derive(Debug, Clone)]
pub struct PgReadiness(pub PgPool);

#[async_trait]
impl ReadinessCheck for PgReadiness {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1").execute(&self.0).await.map(drop).map_err(|e| e.to_string())
    }
}
