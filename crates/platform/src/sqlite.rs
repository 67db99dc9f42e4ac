//! Embedded SQLite data access (rusqlite, bundled): one file per store, WAL with
//! `synchronous=NORMAL` (survives a killed process), a single writer connection on its own thread
//! and a few readers used on the blocking pool, so async tasks never wait on disk. Also the
//! migration runner and the outbox/inbox helpers that run inside a service's own transactions.
//!
//! **Group commit.** Transactions queue for the writer thread, which runs those waiting together
//! in one SQLite transaction, each in its own savepoint: a transaction that fails is rolled back to
//! its savepoint alone, and every caller hears back only once the shared commit is done (or that
//! it failed; a commit is as durable as any in WAL with `synchronous=NORMAL`: it survives a killed
//! process, and a power cut may take back the last ones). Transactions must not run transaction
//! statements of their own (`COMMIT` is refused). Under load this turns many small commits (each a WAL write and a thread
//! handoff) into a few large ones, without changing what any caller sees.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

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
    /// The writer is gone (the database was closed), or the work given to it panicked.
    #[error("the database writer stopped")]
    WriterGone,
    /// Database work asked the database for more work (it would wait for itself).
    #[error("database work may not wait for the database's writer")]
    Reentered,
    /// The transaction's own statements succeeded, but the commit it shared with others failed.
    #[error("the shared commit failed: {0}")]
    Commit(String),
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
pub const PLATFORM_MIGRATIONS: &[Migration] = &[
    Migration {
        scope: "platform",
        version: 1,
        name: "outbox_inbox",
        sql: include_str!("../../../migrations/platform/sqlite/0001_outbox_inbox.sql"),
    },
    Migration {
        scope: "platform",
        version: 2,
        name: "outbox_dead_lease",
        sql: include_str!("../../../migrations/platform/sqlite/0002_outbox_dead_lease.sql"),
    },
];

const READERS: usize = 2;

/// Transactions one group commit holds at most.
const MAX_GROUP: usize = 128;

/// A transaction waiting for the writer: run in a savepoint of the group's transaction, then
/// answered with the group's outcome.
trait Pending: Send {
    /// Runs the caller's statements; whether they succeeded (else they are rolled back).
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller: its own failure, or else the group's commit outcome.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct Transaction<R, F> {
    work: Option<F>,
    result: Option<Result<R, DbError>>,
    reply: oneshot::Sender<Result<R, DbError>>,
}

impl<R, F> Pending for Transaction<R, F>
where
    F: FnOnce(&Connection) -> Result<R, DbError> + Send,
    R: Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else { return false };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(connection))).unwrap_or_else(|_| {
            tracing::error!("a database transaction panicked; it was rolled back");
            Err(DbError::WriterGone)
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.result, committed) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(done)), Ok(())) => Ok(done),
            (_, Err(why)) => Err(DbError::Commit(why)),
            (None, Ok(())) => Err(DbError::Commit("the transaction did not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// Work for the writer thread.
enum Job {
    /// A transaction, committed with the others waiting.
    Transaction(Box<dyn Pending>),
    /// Work that uses the connection alone (its own transactions, migrations).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Job>,
    /// Group commits the writer made.
    groups: Arc<std::sync::atomic::AtomicU64>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

thread_local! {
    /// Whether this thread is a database's writer: work on it must not wait for a writer.
    static ON_WRITER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The savepoint each transaction of a group runs in: opened, released, rolled back to.
const SAVEPOINT: &str = "SAVEPOINT _group_commit";
const RELEASE: &str = "RELEASE _group_commit";
const ROLLBACK_TO: &str = "ROLLBACK TO _group_commit";

/// The writer thread: runs jobs in order until every handle to the database is gone.
fn write_loop(mut connection: Connection, jobs: mpsc::Receiver<Job>, groups: Arc<std::sync::atomic::AtomicU64>) {
    ON_WRITER.set(true);
    // While a transaction of a group runs, a COMMIT of its own (a bug) would commit the others
    // early: refuse it (SQLite turns it into a rollback of the group, and every caller is told).
    let in_group = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let veto = in_group.clone();
    connection.commit_hook(Some(move || veto.load(Ordering::Relaxed)));
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Alone(work) => {
                if std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut connection))).is_err() {
                    tracing::error!("database work panicked");
                }
                settle(&connection);
            }
            Job::Transaction(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Transaction(more)) => group.push(more),
                        Ok(alone) => {
                            next = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&connection, group, &in_group);
                groups.fetch_add(1, Ordering::Relaxed);
                settle(&connection);
            }
        }
    }
}

/// Rolls back a transaction left open (by work that failed half-way, or a failed rollback), so
/// the next job starts clean.
fn settle(connection: &Connection) {
    if !connection.is_autocommit() {
        tracing::error!("the database writer was left inside a transaction; rolling it back");
        let _ = connection.execute_batch("ROLLBACK");
    }
}

/// Runs one of the group commit's statements (prepared once per connection: they run around every
/// transaction, and parsing them each time cost more than running them).
fn control(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `group` in one transaction, each in its own savepoint, and answers each.
fn commit_group(connection: &Connection, mut group: Vec<Box<dyn Pending>>, in_group: &std::sync::atomic::AtomicBool) {
    metrics::histogram!("sqlite_group_commit_size").record(group.len() as f64);
    if let Err(error) = control(connection, "BEGIN IMMEDIATE") {
        let why = error.to_string();
        group.into_iter().for_each(|pending| pending.answer(Err(why.clone())));
        return;
    }
    let mut aborted = None;
    for pending in &mut group {
        if let Err(error) = control(connection, SAVEPOINT) {
            aborted = Some(error.to_string());
            break;
        }
        in_group.store(true, Ordering::Relaxed);
        let ok = pending.run(connection);
        in_group.store(false, Ordering::Relaxed);
        if connection.is_autocommit() {
            // The whole transaction is gone: SQLite rolled it back (a full disk, an I/O error),
            // or the transaction's own COMMIT or ROLLBACK ended it.
            aborted = Some("the transaction was rolled back by the database".into());
            break;
        }
        let ended = if ok {
            control(connection, RELEASE)
        } else {
            control(connection, ROLLBACK_TO).and_then(|()| control(connection, RELEASE))
        };
        if let Err(error) = ended {
            aborted = Some(error.to_string());
            break;
        }
    }
    let committed = match aborted {
        Some(why) => Err(why),
        None => control(connection, "COMMIT").map_err(|error| error.to_string()),
    };
    if committed.is_err() && !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    group.into_iter().for_each(|pending| pending.answer(committed.clone()));
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
        let (jobs, queue) = mpsc::channel();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("db");
        let groups = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = groups.clone();
        std::thread::Builder::new()
            .name(format!("sqlite-{name}"))
            .spawn(move || write_loop(writer, queue, counted))
            .map_err(|source| DbError::Io { path: path.clone(), source })?;
        let inner = Inner { path, writer: jobs, groups, readers, next_reader: AtomicUsize::new(0) };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The commits the writer made for transactions so far (each holding one or more).
    pub fn group_commits(&self) -> u64 {
        self.inner.groups.load(Ordering::Relaxed)
    }

    /// Runs `f` on the writer connection alone (for work with its own transactions).
    pub async fn call<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        refuse_reentry()?;
        let (reply, answer) = oneshot::channel();
        let job = Job::Alone(Box::new(move |connection| {
            let _ = reply.send(f(connection));
        }));
        self.inner.writer.send(job).map_err(|_| DbError::WriterGone)?;
        answer.await.map_err(|_| DbError::WriterGone)?
    }

    /// Runs `f` in a transaction on the writer, committed when it returns `Ok` (together with the
    /// other transactions waiting then: see the module documentation) and rolled back when it
    /// returns `Err`; answers once the commit is done.
    pub async fn transaction<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        refuse_reentry()?;
        let (reply, answer) = oneshot::channel();
        let pending = Transaction { work: Some(f), result: None, reply };
        self.inner.writer.send(Job::Transaction(Box::new(pending))).map_err(|_| DbError::WriterGone)?;
        answer.await.map_err(|_| DbError::WriterGone)?
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
        refuse_reentry()?;
        let migrations = migrations.to_vec();
        let (reply, answer) = mpsc::channel();
        let job = Job::Alone(Box::new(move |connection| {
            let _ = reply.send(migrate(connection, migrations));
        }));
        self.inner.writer.send(job).map_err(|_| DbError::WriterGone)?;
        answer.recv().map_err(|_| DbError::WriterGone)?
    }
}

/// Work running on a writer thread waiting for a writer would wait for itself.
fn refuse_reentry() -> Result<(), DbError> {
    if ON_WRITER.get() {
        return Err(DbError::Reentered);
    }
    Ok(())
}

/// Applies every migration of `migrations` not applied yet, in order, each in its own transaction.
fn migrate(connection: &mut Connection, migrations: Vec<Migration>) -> Result<usize, DbError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS _migrations (
            scope TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
            applied_at INTEGER NOT NULL, PRIMARY KEY (scope, version))",
    )?;
    let mut sorted = migrations;
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
pub fn inbox_claim(tx: &Connection, consumer: &str, event_id: &str) -> Result<bool, DbError> {
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
            .map_err(|e| crate::error::cause_chain(&e))
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn transactions_committed_together_each_stand_or_fall_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("group.db")).unwrap();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE n (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")?)).await.unwrap();
        // The writer busy, so the transactions queue and are committed in groups.
        let busy = tokio::spawn({
            let db = db.clone();
            async move {
                db.call(|_| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = db.group_commits();
        // Every third fails half-way (a unique violation), one panics, one tries to commit alone.
        let outcomes = futures::future::join_all((0..300_i64).map(|k| {
            let db = db.clone();
            async move {
                db.transaction(move |tx| {
                    tx.execute("INSERT INTO n (k, v) VALUES (?1, 1)", params![k])?;
                    if k == 151 {
                        panic!("a bug in one transaction");
                    }
                    if k % 3 == 0 {
                        tx.execute("INSERT INTO n (k, v) VALUES (?1, 2)", params![k])?;
                    }
                    Ok(k)
                })
                .await
            }
        }))
        .await;
        busy.await.unwrap().unwrap();
        let groups = db.group_commits() - before;
        assert!(groups <= 10, "300 queued transactions took {groups} commits");
        let kept: Vec<i64> = outcomes.iter().filter_map(|o| o.as_ref().ok().copied()).collect();
        assert_eq!(kept.len(), 199, "each failure took only its own transaction");
        assert!(outcomes.iter().enumerate().all(|(k, o)| o.is_ok() == (k % 3 != 0 && k != 151)));
        let stored: Vec<i64> = db
            .read(|c| {
                Ok(c.prepare("SELECT k FROM n ORDER BY k")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, kept, "exactly the answered ones are stored");

        // A transaction that commits on its own is refused, and takes its group with it.
        let rogue = db.transaction(|tx| Ok(tx.execute_batch("INSERT INTO n (k, v) VALUES (1000, 1); COMMIT")?)).await;
        assert!(rogue.is_err());
        let count = || db.read(|c| Ok(c.query_row("SELECT count(*) FROM n", [], |r| r.get::<_, i64>(0))?));
        assert_eq!(count().await.unwrap(), 199, "nothing of it stayed");
        // The writer goes on after all that, alone or grouped.
        db.call(|c| Ok(c.execute("INSERT INTO n (k, v) VALUES (1001, 1)", [])?)).await.unwrap();
        db.transaction(|tx| Ok(tx.execute("INSERT INTO n (k, v) VALUES (1002, 1)", [])?)).await.unwrap();
        assert_eq!(count().await.unwrap(), 201);
    }

    #[tokio::test]
    async fn database_work_cannot_wait_for_its_own_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("reentry.db")).unwrap();
        let inner = db.clone();
        let nested = db.call(move |_| Ok(inner.migrate(&[]))).await.unwrap();
        assert!(matches!(nested, Err(DbError::Reentered)));
    }
}
