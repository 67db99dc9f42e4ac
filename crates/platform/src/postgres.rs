//! PostgreSQL data access (sqlx): the pool, the migration runner (scoped like the SQLite one, and
//! safe when several tasks start at once), and the outbox/inbox helpers for a service's own
//! transactions.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::events::Event;
use crate::events::bus::BusError;
use crate::events::outbox::{OutboxStore, ParkedEvent};
use crate::http::ops::ReadinessCheck;
use crate::sqlite::Migration;

/// The platform's own tables in every PostgreSQL service schema.
pub const PLATFORM_MIGRATIONS: &[Migration] = &[
    Migration {
        scope: "platform",
        version: 1,
        name: "outbox_inbox",
        sql: include_str!("../../../migrations/platform/postgres/0001_outbox_inbox.sql"),
    },
    Migration {
        scope: "platform",
        version: 2,
        name: "outbox_dead_lease",
        sql: include_str!("../../../migrations/platform/postgres/0002_outbox_dead_lease.sql"),
    },
    Migration {
        scope: "platform",
        version: 3,
        name: "outbox_parts",
        sql: include_str!("../../../migrations/platform/postgres/0003_outbox_parts.sql"),
    },
];

/// The partitions of a PostgreSQL outbox: an event's is its aggregate's (its subject's) shard.
pub const OUTBOX_PARTS: u32 = 8;

/// Connects a pool of at most `max_connections` to `url`. A database that does not exist yet is
/// made first (each service keeps its own database on a shared server, and the first start of a
/// service makes it), when the URL's user may create databases.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose_secret())?;
    let pool = || {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
    };
    match pool().await {
        Err(error) if is_code(&error, "3D000") => {
            create_database(&options).await?;
            pool().await
        }
        other => other,
    }
}

fn is_code(error: &sqlx::Error, code: &str) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|c| c == code)
}

/// Makes the database `options` names, from the server's `postgres` database; one made meanwhile
/// by another task is fine.
async fn create_database(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let name = options.get_database().unwrap_or_default().to_owned();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        // Only plain names are made: anything else is the operator's to create.
        return Err(sqlx::Error::Configuration(format!("database {name:?} does not exist").into()));
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    tracing::info!(database = %name, "making the service's database");
    // Identifiers cannot be bound; the name was checked to be plain lowercase letters, digits and `_`.
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
    match sqlx::query(create).execute(&mut admin).await {
        Err(error) if !is_code(&error, "42P04") => Err(error),
        _ => Ok(()),
    }
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
    let part = crate::dynamodb::shard_of(event.subject.as_deref().unwrap_or(&event.id), u64::from(OUTBOX_PARTS));
    sqlx::query("INSERT INTO outbox (event_id, body, part) VALUES ($1, $2, $3)")
        .bind(&event.id)
        .bind(event.to_json())
        .bind(part as i32)
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
    fn partitions(&self) -> u32 {
        OUTBOX_PARTS
    }

    async fn lease(&self, partition: u32, owner: &str, ttl: Duration) -> Result<bool, BusError> {
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let taken = sqlx::query(
            "INSERT INTO outbox_lease (part, owner, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE outbox_lease.owner = excluded.owner OR outbox_lease.until_ms < $4",
        )
        .bind(i64::from(partition))
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.0)
        .await
        .map_err(bus_error)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release(&self, partition: u32, owner: &str) -> Result<(), BusError> {
        sqlx::query("DELETE FROM outbox_lease WHERE part = $1 AND owner = $2")
            .bind(i64::from(partition))
            .bind(owner)
            .execute(&self.0)
            .await
            .map_err(bus_error)?;
        Ok(())
    }

    async fn fetch(&self, partition: u32, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
        sqlx::query_as("SELECT seq, body FROM outbox WHERE part = $1 ORDER BY seq LIMIT $2")
            .bind(partition as i32)
            .bind(limit as i64)
            .fetch_all(&self.0)
            .await
            .map_err(bus_error)
    }

    async fn delete(&self, _partition: u32, seqs: &[i64]) -> Result<(), BusError> {
        sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)").bind(seqs).execute(&self.0).await.map_err(bus_error)?;
        Ok(())
    }

    async fn park(&self, _partition: u32, seq: i64, _body: &str, reason: &str) -> Result<(), BusError> {
        // One statement: the row leaves the outbox and lands in the dead table together.
        sqlx::query(
            "WITH gone AS (DELETE FROM outbox WHERE seq = $1 RETURNING seq, event_id, body)
             INSERT INTO outbox_dead (seq, event_id, body, reason)
             SELECT seq, event_id, body, $2 FROM gone
             ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason, parked_at = now()",
        )
        .bind(seq)
        .bind(reason)
        .execute(&self.0)
        .await
        .map_err(bus_error)?;
        Ok(())
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, BusError> {
        let rows: Vec<(i64, Option<String>, String, String, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as("SELECT seq, event_id, body, reason, parked_at FROM outbox_dead ORDER BY seq LIMIT $1")
                .bind(limit as i64)
                .fetch_all(&self.0)
                .await
                .map_err(bus_error)?;
        Ok(rows
            .into_iter()
            .map(|(seq, event_id, body, reason, parked_at)| ParkedEvent {
                seq,
                event_id,
                body,
                reason,
                parked_at_ms: parked_at.timestamp_millis(),
            })
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_services_database_is_made_on_its_first_connection() {
        let Some(url) = crate::testing::server_env("SHOP_TEST_DATABASE_URL") else { return };
        let name = format!("shop_made_{}", uuid::Uuid::new_v4().simple());
        let mut own = url::Url::parse(&url).unwrap();
        own.set_path(&format!("/{name}"));
        let own = SecretString::from(own.to_string());
        for _ in 0..2 {
            // Made once, then found.
            let pool = connect(&own, 2).await.unwrap();
            let current: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.unwrap();
            assert_eq!(current, name);
            pool.close().await;
        }
        let mut admin = PgConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{name}\""))).execute(&mut admin).await.unwrap();

        let mut odd = url::Url::parse(&url).unwrap();
        odd.set_path("/Not-Plain");
        let refused = connect(&SecretString::from(odd.to_string()), 1).await.unwrap_err();
        assert!(refused.to_string().contains("does not exist"), "{refused}");
    }
}
