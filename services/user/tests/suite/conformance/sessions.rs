//! The `SessionStore` suite, for SQLite and for Redis.

use std::sync::Arc;
use std::time::Duration;

use platform::sqlite::{Db, now_ms};
use shop_user::domain::{Account, User};
use shop_user::store::redis::RedisSessionStore;
use shop_user::store::sqlite::{SqliteSessionStore, SqliteUserStore};
use shop_user::store::{Rotation, Session, SessionStore, UserStore};
use tempfile::TempDir;
use tokio::sync::Barrier;

use super::unique;

/// The grace window the service gives a spent token with its own successor.
const GRACE_MS: i64 = 10_000;

/// The refresh-token lifetime the Redis store is opened with (its revocation markers live as long).
const REFRESH_TTL_SECS: u64 = 3600;

/// One adapter under test.
struct SessionFixture {
    store: Arc<dyn SessionStore>,
    backend: Backend,
}

enum Backend {
    /// Refresh tokens reference users: the fixture makes them in the same database.
    Sqlite { users: SqliteUserStore, _dir: TempDir },
    /// Every key of the test starts with `prefix`.
    Redis { url: String, prefix: String },
}

impl SessionFixture {
    /// A new user id (a stored account where sessions need one).
    async fn user(&self) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        if let Backend::Sqlite { users, .. } = &self.backend {
            let account = Account {
                user: User {
                    id: id.clone(),
                    email: format!("{id}@example.com"),
                    name: "Session Tester".to_owned(),
                    role: platform::auth::Role::Customer,
                    created_at: chrono::Utc::now(),
                },
                password_hash: "hash".to_owned(),
                mfa_secret: None,
                mfa_confirmed: false,
                mfa_last_step: 0,
                credentials_changed_at: 0,
                email_verified: false,
                cognito_sub: None,
            };
            users.create(&account, &[]).await.unwrap();
        }
        id
    }

    /// The store opened again with a refresh lifetime of `secs` (the SQLite store has none).
    async fn with_refresh_ttl(&self, secs: u64) -> Arc<dyn SessionStore> {
        match &self.backend {
            Backend::Sqlite { .. } => self.store.clone(),
            Backend::Redis { url, prefix } => {
                Arc::new(RedisSessionStore::connect(url, prefix.clone(), secs).await.unwrap())
            }
        }
    }

    async fn finish(&self) {
        if let Backend::Redis { url, prefix } = &self.backend {
            delete_keys(url, prefix).await;
        }
    }
}

/// Deletes every key that starts with `prefix`.
async fn delete_keys(url: &str, prefix: &str) {
    let client = ::redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut connection).await.unwrap();
    if !keys.is_empty() {
        ::redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await.unwrap();
    }
}

async fn open_sqlite() -> Option<SessionFixture> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("user.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    db.migrate(shop_user::MIGRATIONS).unwrap();
    Some(SessionFixture {
        store: Arc::new(SqliteSessionStore::new(db.clone())),
        backend: Backend::Sqlite { users: SqliteUserStore::new(db), _dir: dir },
    })
}

async fn open_redis() -> Option<SessionFixture> {
    let url = platform::testing::server_env("SHOP_TEST_REDIS_URL")?;
    let prefix = format!("{}:", unique("t:"));
    let store = RedisSessionStore::connect(&url, prefix.clone(), REFRESH_TTL_SECS).await.unwrap();
    Some(SessionFixture { store: Arc::new(store), backend: Backend::Redis { url, prefix } })
}

/// The suite for one adapter.
macro_rules! session_suite {
    ($adapter:ident, $fixture:ident) => {
        mod $adapter {
            use super::*;

            instantiate!($fixture:
                each_rotation_spends_the_token_and_makes_its_successor_live,
                presenting_a_spent_token_revokes_the_whole_family,
                of_concurrent_presentations_of_one_token_exactly_one_rotates,
                a_token_presented_again_with_its_successor_within_the_grace_gets_it_again,
                concurrent_presentations_with_one_successor_all_get_it,
                an_expired_token_is_invalid,
                an_unknown_token_is_invalid,
                revoke_makes_the_familys_live_token_invalid,
                revoking_an_unknown_token_is_ok,
                revoke_user_revokes_every_family_of_that_user_and_no_other,
                revoke_user_of_a_user_without_sessions_is_ok,
                a_family_kept_alive_by_rotation_past_the_refresh_lifetime_is_still_revoked_by_revoke_user,
            );
        }
    };
}

session_suite!(sqlite, open_sqlite);
session_suite!(redis, open_redis);

// ---- helpers ----------------------------------------------------------------------------------

/// A token hash no other test uses.
fn token() -> String {
    unique("rt-")
}

/// A refresh-token expiry an hour from now.
fn in_an_hour() -> i64 {
    now_ms() + 3_600_000
}

/// Starts a new family for `user_id`; the session and its first token.
async fn login(fx: &SessionFixture, user_id: &str, amr: &[&str]) -> (Session, String) {
    let session = Session {
        family_id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
    };
    let first = token();
    fx.store.start(&session, &first, in_an_hour()).await.unwrap();
    (session, first)
}

/// Presents `presented` with a fresh successor; what it did, and the successor.
async fn rotate(fx: &SessionFixture, presented: &str) -> (Rotation, String) {
    let next = token();
    let rotation = fx.store.rotate(presented, &next, in_an_hour(), now_ms(), GRACE_MS).await.unwrap();
    (rotation, next)
}

/// Whether `presented` is live: presents it, so a live token is spent (and its successor dropped).
async fn is_live(fx: &SessionFixture, presented: &str) -> bool {
    matches!(rotate(fx, presented).await.0, Rotation::Rotated(_))
}

// ---- the suite --------------------------------------------------------------------------------

async fn each_rotation_spends_the_token_and_makes_its_successor_live(fx: &SessionFixture) {
    let user = fx.user().await;
    let (session, mut live) = login(fx, &user, &["pwd", "otp"]).await;
    for _ in 0..3 {
        let (rotation, next) = rotate(fx, &live).await;
        assert_eq!(rotation, Rotation::Rotated(session.clone()), "same family, user and amr");
        live = next;
    }
    let (single, first) = login(fx, &user, &["pwd"]).await;
    assert_eq!(rotate(fx, &first).await.0, Rotation::Rotated(single));
}

async fn presenting_a_spent_token_revokes_the_whole_family(fx: &SessionFixture) {
    let user = fx.user().await;
    let (session, first) = login(fx, &user, &["pwd"]).await;
    let (_, other_first) = login(fx, &user, &["pwd"]).await;
    let (rotation, live) = rotate(fx, &first).await;
    assert_eq!(rotation, Rotation::Rotated(session.clone()));

    let (replay, replay_next) = rotate(fx, &first).await;
    assert_eq!(replay, Rotation::Reused { family_id: session.family_id.clone() });
    assert_eq!(rotate(fx, &live).await.0, Rotation::Invalid, "the live successor died with its family");
    assert_eq!(rotate(fx, &replay_next).await.0, Rotation::Invalid, "a replay makes no successor");
    assert!(is_live(fx, &other_first).await, "another family of the user lives on");
}

async fn a_token_presented_again_with_its_successor_within_the_grace_gets_it_again(fx: &SessionFixture) {
    let user = fx.user().await;
    let (session, first) = login(fx, &user, &["pwd"]).await;
    let next = token();
    let now = now_ms();
    assert_eq!(
        fx.store.rotate(&first, &next, in_an_hour(), now, GRACE_MS).await.unwrap(),
        Rotation::Rotated(session.clone())
    );
    // Again (another tab, a retry after a lost answer): the same successor, still live.
    let again = fx.store.rotate(&first, &next, in_an_hour(), now + 1_000, GRACE_MS).await.unwrap();
    assert_eq!(again, Rotation::Rotated(session.clone()));
    // With another successor it is a replay; so is the same one past the grace.
    let replayed = fx.store.rotate(&first, &next, in_an_hour(), now + GRACE_MS + 1, GRACE_MS).await.unwrap();
    assert_eq!(replayed, Rotation::Reused { family_id: session.family_id.clone() });
    assert!(!is_live(fx, &next).await, "the family is revoked");

    let (session, first) = login(fx, &user, &["pwd"]).await;
    let live = token();
    fx.store.rotate(&first, &live, in_an_hour(), now_ms(), GRACE_MS).await.unwrap();
    let stolen = fx.store.rotate(&first, &token(), in_an_hour(), now_ms(), GRACE_MS).await.unwrap();
    assert_eq!(stolen, Rotation::Reused { family_id: session.family_id }, "another successor is a replay");
}

async fn concurrent_presentations_with_one_successor_all_get_it(fx: &SessionFixture) {
    const TASKS: usize = 10;
    let user = fx.user().await;
    let (session, first) = login(fx, &user, &["pwd"]).await;
    let next = token();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, barrier, first, next) = (fx.store.clone(), barrier.clone(), first.clone(), next.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.rotate(&first, &next, in_an_hour(), now_ms(), GRACE_MS).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Rotation::Rotated(session.clone()));
    }
    assert!(is_live(fx, &next).await, "one successor, live");
}

async fn of_concurrent_presentations_of_one_token_exactly_one_rotates(fx: &SessionFixture) {
    const TASKS: usize = 10;
    let user = fx.user().await;
    for round in 0..5 {
        let (session, first) = login(fx, &user, &["pwd"]).await;
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (store, barrier, first) = (fx.store.clone(), barrier.clone(), first.clone());
                tokio::spawn(async move {
                    let next = token();
                    barrier.wait().await;
                    let rotation = store.rotate(&first, &next, in_an_hour(), now_ms(), GRACE_MS).await.unwrap();
                    (rotation, next)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let rotated = outcomes.iter().filter(|(r, _)| *r == Rotation::Rotated(session.clone())).count();
        let reused =
            outcomes.iter().filter(|(r, _)| *r == Rotation::Reused { family_id: session.family_id.clone() }).count();
        let invalid = outcomes.iter().filter(|(r, _)| *r == Rotation::Invalid).count();
        assert_eq!(rotated, 1, "round {round}: exactly one presentation rotates: {outcomes:?}");
        assert!(reused >= 1, "round {round}: a loser sees the reuse: {outcomes:?}");
        assert_eq!(rotated + reused + invalid, TASKS, "round {round}: {outcomes:?}");
        for (_, next) in &outcomes {
            assert_eq!(rotate(fx, next).await.0, Rotation::Invalid, "round {round}: the family is revoked");
        }
    }
}

async fn an_expired_token_is_invalid(fx: &SessionFixture) {
    let user = fx.user().await;
    let session =
        Session { family_id: uuid::Uuid::now_v7().to_string(), user_id: user.clone(), amr: vec!["pwd".into()] };
    let expires_at = now_ms() + 60_000;
    fx.store.start(&session, "expiring", expires_at).await.unwrap();
    let rotation = fx.store.rotate("expiring", &token(), in_an_hour(), expires_at, GRACE_MS).await.unwrap();
    assert_eq!(rotation, Rotation::Invalid, "a token is dead at its expires_at");
    let rotation = fx.store.rotate("expiring", &token(), in_an_hour(), expires_at + 1, GRACE_MS).await.unwrap();
    assert_eq!(rotation, Rotation::Invalid);

    let expired = Session { family_id: uuid::Uuid::now_v7().to_string(), ..session };
    fx.store.start(&expired, "expired", now_ms() - 1000).await.unwrap();
    assert_eq!(rotate(fx, "expired").await.0, Rotation::Invalid, "a token past its expiry");
}

async fn an_unknown_token_is_invalid(fx: &SessionFixture) {
    let user = fx.user().await;
    login(fx, &user, &["pwd"]).await;
    let (rotation, next) = rotate(fx, "no-such-token").await;
    assert_eq!(rotation, Rotation::Invalid);
    assert_eq!(rotate(fx, &next).await.0, Rotation::Invalid, "an unknown token makes no successor");
}

async fn revoke_makes_the_familys_live_token_invalid(fx: &SessionFixture) {
    let user = fx.user().await;
    // Logged out with the live token.
    let (_, first) = login(fx, &user, &["pwd"]).await;
    let (_, live) = rotate(fx, &first).await;
    fx.store.revoke(&live).await.unwrap();
    assert_eq!(rotate(fx, &live).await.0, Rotation::Invalid);

    // Logged out with a spent ancestor: still that family.
    let (_, first) = login(fx, &user, &["pwd"]).await;
    let (_, live) = rotate(fx, &first).await;
    fx.store.revoke(&first).await.unwrap();
    assert_eq!(rotate(fx, &live).await.0, Rotation::Invalid);

    // A family just started.
    let (_, first) = login(fx, &user, &["pwd"]).await;
    let (_, untouched) = login(fx, &user, &["pwd"]).await;
    fx.store.revoke(&first).await.unwrap();
    assert_eq!(rotate(fx, &first).await.0, Rotation::Invalid);
    assert!(is_live(fx, &untouched).await, "only that family is revoked");
}

async fn revoking_an_unknown_token_is_ok(fx: &SessionFixture) {
    let user = fx.user().await;
    let (session, first) = login(fx, &user, &["pwd"]).await;
    fx.store.revoke("no-such-token").await.unwrap();
    assert_eq!(rotate(fx, &first).await.0, Rotation::Rotated(session));
}

async fn revoke_user_revokes_every_family_of_that_user_and_no_other(fx: &SessionFixture) {
    let ada = fx.user().await;
    let grace = fx.user().await;
    let (_, first) = login(fx, &ada, &["pwd"]).await;
    let (_, rotated) = rotate(fx, &first).await;
    let (_, started) = login(fx, &ada, &["pwd", "otp"]).await;
    let (grace_session, grace_first) = login(fx, &grace, &["pwd"]).await;

    fx.store.revoke_user(&ada).await.unwrap();
    assert_eq!(rotate(fx, &rotated).await.0, Rotation::Invalid, "a rotated family");
    assert_eq!(rotate(fx, &started).await.0, Rotation::Invalid, "a family just started");
    assert_eq!(rotate(fx, &grace_first).await.0, Rotation::Rotated(grace_session), "another user's family");

    let (session, after) = login(fx, &ada, &["pwd"]).await;
    assert_eq!(rotate(fx, &after).await.0, Rotation::Rotated(session), "a later login is a new family");
}

async fn revoke_user_of_a_user_without_sessions_is_ok(fx: &SessionFixture) {
    let ada = fx.user().await;
    let (session, first) = login(fx, &ada, &["pwd"]).await;
    let nobody = fx.user().await;
    fx.store.revoke_user(&nobody).await.unwrap();
    fx.store.revoke_user("no-such-user").await.unwrap();
    assert_eq!(rotate(fx, &first).await.0, Rotation::Rotated(session), "nobody else's family is revoked");
}

/// The refresh lifetime slides: each rotation gives the successor the full lifetime, so a family
/// used within every lifetime outlives its login by far. `revoke_user` (after a password reset)
/// must still find it. The store is opened with a refresh lifetime of 1 s.
async fn a_family_kept_alive_by_rotation_past_the_refresh_lifetime_is_still_revoked_by_revoke_user(
    fx: &SessionFixture,
) {
    let store = fx.with_refresh_ttl(1).await;
    let lifetime = || now_ms() + 1000;
    let user = fx.user().await;
    let session =
        Session { family_id: uuid::Uuid::now_v7().to_string(), user_id: user.clone(), amr: vec!["pwd".into()] };
    let mut live = token();
    store.start(&session, &live, lifetime()).await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let next = token();
        let rotation = store.rotate(&live, &next, lifetime(), now_ms(), GRACE_MS).await.unwrap();
        assert_eq!(rotation, Rotation::Rotated(session.clone()));
        live = next;
    }
    // 1.5 s after the login, with a token live for another second.
    store.revoke_user(&user).await.unwrap();
    let rotation = store.rotate(&live, &token(), lifetime(), now_ms(), GRACE_MS).await.unwrap();
    assert_eq!(rotation, Rotation::Invalid, "revoke_user missed a live family");
}
