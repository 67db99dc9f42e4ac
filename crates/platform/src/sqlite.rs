//! Embedded SQLite data access (rusqlite, bundled): one file per store, WAL with
//! `synchronous=NORMAL` (survives a killed process), a single writer connection and a few readers,
//! each used on the blocking pool so async tasks never wait on disk. Also the migration runner and the
//! outbox/inbox helpers that run inside a service's own transactions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::events::Event;
use crate::http::ops::ReadinessCheck;

/// A failure of the embedded database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused the statement.
    #[error("sqlite")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file or its folder could not be made.
    #[error("database file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task running the statement died.
    #[error("database task failed")]
    Task(#[from] tokio::task::JoinError),
    /// A migration could not be applied.
    #[error("migration {scope}/{version} ({name})")]
    Migration {
        /// The migration's scope.
        scope: &'static str,
        /// Its version.
        version: u32,
        /// Its name.
        name: &'static str,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

impl DbError {
    /// Whether a write lost a uniqueness race (the caller may answer 409).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }
}

/// One SQL migration, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Whose migration (a service, or `platform`): versions are numbered per scope.
    pub scope: &'static str,
    /// Applied in ascending order.
    pub version: u32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, run as one batch in one transaction.
    pub sql: &'static str,
}

/// The platform's own tables in every service database: the outbox and the inbox.
pub const PLATFORM_MIGRATIONS: &[Migration] = &[Migration {
    scope: "platform",
    version: 1,
    name: "outbox_inbox",
    sql: include_str!("../../../migrations/platform/sqlite/0001_outbox_inbox.sql"),
}];

const READERS: usize = 2;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// A SQLite database file shared by the tasks of one service.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.inner.path).finish()
    }
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl Db {
    /// Opens a service's database at `path` with the platform's tables (outbox, inbox) and then
    /// `migrations` applied; the number of migrations applied now.
    pub fn open_migrated(path: impl AsRef<Path>, migrations: &[Migration]) -> Result<(Self, usize), DbError> {
        let db = Self::open(path)?;
        let applied = db.migrate(PLATFORM_MIGRATIONS)? + db.migrate(migrations)?;
        Ok((db, applied))
    }

    /// Opens (creating it and its folder when missing) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| DbError::Io { path: path.clone(), source })?;
        }
        let writer = Connection::open(&path)?;
        configure(&writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?;
            reader.busy_timeout(Duration::from_secs(10))?;
            reader.set_prepared_statement_cache_capacity(128);
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            inner: Arc::new(Inner { path, writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut connection)
        })
        .await?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer, committing when it returns `Ok`.
    pub async fn transaction<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        self.call(move |connection| {
            let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let result = f(&tx)?;
            tx.commit()?;
            Ok(result)
        })
        .await
    }

    /// Runs `f` on a read-only connection (sees every committed write), on the blocking pool.
    pub async fn read<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let start = inner.next_reader.fetch_add(1, Ordering::Relaxed);
            // Take a free reader if there is one, else wait for the next in turn.
            for i in 0..inner.readers.len() {
                if let Ok(connection) = inner.readers[(start + i) % inner.readers.len()].try_lock() {
                    return f(&connection);
                }
            }
            let connection = inner.readers[start % inner.readers.len()].lock().unwrap_or_else(|e| e.into_inner());
            f(&connection)
        })
        .await?
    }

    /// Applies every migration not applied yet, in order, each in its own transaction.
    pub fn migrate(&self, migrations: &[Migration]) -> Result<usize, DbError> {
        let mut connection = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS _migrations (
                scope TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
                applied_at INTEGER NOT NULL, PRIMARY KEY (scope, version))",
        )?;
        let mut sorted = migrations.to_vec();
        sorted.sort_by_key(|m| (m.scope, m.version));
        let mut applied = 0;
        for migration in sorted {
            let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let done: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM _migrations WHERE scope = ?1 AND version = ?2",
                    params![migration.scope, migration.version],
                    |row| row.get(0),
                )
                .optional()?;
            if done.is_some() {
                continue;
            }
            let fail = |source| DbError::Migration {
                scope: migration.scope,
                version: migration.version,
                name: migration.name,
                source,
            };
            tx.execute_batch(migration.sql).map_err(fail)?;
            tx.execute(
                "INSERT INTO _migrations (scope, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)",
                params![migration.scope, migration.version, migration.name, now_ms()],
            )?;
            tx.commit()?;
            applied += 1;
        }
        Ok(applied)
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Adds `event` to the outbox inside the caller's transaction (or savepoint): it is published if and
/// only if the transaction commits.
pub fn outbox_push(tx: &rusqlite::Connection, event: &Event) -> Result<(), DbError> {
    let body = serde_json::to_string(event).expect("an event serializes");
    tx.prepare_cached("INSERT INTO outbox (event_id, body, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
        event.id,
        body,
        now_ms()
    ])?;
    Ok(())
}

/// Records that `consumer` applied `event_id`, inside the caller's transaction. `false` means it was
/// applied before: the caller should change nothing and acknowledge.
pub fn inbox_claim(tx: &Transaction<'_>, consumer: &str, event_id: &str) -> Result<bool, DbError> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO inbox (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)")?
        .execute(params![consumer, event_id, now_ms()])?;
    Ok(inserted == 1)
}

#[async_trait]
impl ReadinessCheck for Db {
    fn name(&self) -> &str {
        self.inner.path.file_stem().and_then(|s| s.to_str()).unwrap_or("sqlite")
    }

    async fn check(&self) -> Result<(), String> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(drop)
            .map_err(|e| crate::http::error::cause_chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("nested/test.db")).unwrap();
        let migrations = [
            Migration { scope: "t", version: 2, name: "b", sql: "ALTER TABLE a ADD COLUMN y INTEGER;" },
            Migration { scope: "t", version: 1, name: "a", sql: "CREATE TABLE a (x INTEGER);" },
        ];
        assert_eq!(db.migrate(&migrations).unwrap(), 2);
        assert_eq!(db.migrate(&migrations).unwrap(), 0);
        db.call(|c| Ok(c.execute("INSERT INTO a (x, y) VALUES (1, 2)", [])?)).await.unwrap();
        let n: i64 = db.read(|c| Ok(c.query_row("SELECT count(*) FROM a", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_failed_migration_changes_nothing_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        let bad = [Migration { scope: "t", version: 1, name: "bad", sql: "CREATE TABLE a (x); SELEC nonsense;" }];
        let error = db.migrate(&bad).unwrap_err();
        assert!(error.to_string().contains("t/1 (bad)"), "{error}");
        let tables: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'a'", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn the_inbox_claims_an_event_once_and_rolls_back_with_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        db.migrate(PLATFORM_MIGRATIONS).unwrap();
        // A handler that fails after claiming: the claim is rolled back with it.
        let failed = db
            .transaction(|tx| {
                assert!(inbox_claim(tx, "c", "e1")?);
                Err::<(), _>(DbError::Sqlite(rusqlite::Error::InvalidQuery))
            })
            .await;
        assert!(failed.is_err());
        assert!(db.transaction(|tx| inbox_claim(tx, "c", "e1")).await.unwrap());
        assert!(!db.transaction(|tx| inbox_claim(tx, "c", "e1")).await.unwrap());
        // Another consumer may apply the same event.
        assert!(db.transaction(|tx| inbox_claim(tx, "d", "e1")).await.unwrap());
    }

    #[tokio::test]
    async fn a_unique_violation_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("t.db")).unwrap();
        db.migrate(&[Migration { scope: "t", version: 1, name: "a", sql: "CREATE TABLE a (x TEXT UNIQUE);" }]).unwrap();
        db.call(|c| Ok(c.execute("INSERT INTO a VALUES ('k')", [])?)).await.unwrap();
        let error = db.call(|c| Ok(c.execute("INSERT INTO a VALUES ('k')", [])?)).await.unwrap_err();
        assert!(error.is_unique_violation());
    }
}
