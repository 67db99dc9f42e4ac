//! The `UserStore` suite, for SQLite and for PostgreSQL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use platform::auth::Role;
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::sqlite::{Db, now_ms};
use serde_json::json;
use shop_user::domain::{Account, Address, AddressInput, User};
use shop_user::store::postgres::{PG_MIGRATIONS, PgUserStore};
use shop_user::store::sqlite::SqliteUserStore;
use shop_user::store::{Claim, EventFactory, ResetRequest, StoreError, UserStore};
use tempfile::TempDir;

use super::{PgSchema, unique};

/// One adapter under test, a way to look at the outbox its transactions write to, and the signal
/// it wakes after writing there.
struct UserFixture {
    store: Box<dyn UserStore>,
    backend: Backend,
    signal: OutboxSignal,
}

enum Backend {
    Sqlite { db: Db, _dir: TempDir },
    Postgres(PgSchema),
}

impl UserFixture {
    /// The bodies of the events in the outbox, oldest first.
    async fn outbox(&self) -> Vec<String> {
        match &self.backend {
            Backend::Sqlite { db, .. } => db
                .read(|c| {
                    Ok(c.prepare("SELECT body FROM outbox ORDER BY seq")?
                        .query_map([], |row| row.get(0))?
                        .collect::<Result<Vec<String>, _>>()?)
                })
                .await
                .unwrap(),
            Backend::Postgres(schema) => {
                sqlx::query_scalar("SELECT body FROM outbox ORDER BY seq").fetch_all(&schema.pool).await.unwrap()
            }
        }
    }

    /// Whether the store woke its relay since the last look.
    fn woke_the_relay(&self) -> bool {
        self.signal.woken().now_or_never().is_some()
    }

    async fn finish(&self) {
        if let Backend::Postgres(schema) = &self.backend {
            schema.drop().await;
        }
    }
}

async fn open_sqlite() -> Option<UserFixture> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("user.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    db.migrate(shop_user::MIGRATIONS).unwrap();
    let signal = OutboxSignal::default();
    let store = Box::new(SqliteUserStore::new(db.clone()).waking(signal.clone()));
    Some(UserFixture { store, backend: Backend::Sqlite { db, _dir: dir }, signal })
}

async fn open_postgres() -> Option<UserFixture> {
    let schema = PgSchema::create().await?;
    platform::postgres::migrate(&schema.pool, platform::postgres::PLATFORM_MIGRATIONS).await.unwrap();
    platform::postgres::migrate(&schema.pool, PG_MIGRATIONS).await.unwrap();
    let signal = OutboxSignal::default();
    let store = Box::new(PgUserStore::new(schema.pool.clone()).waking(signal.clone()));
    Some(UserFixture { store, backend: Backend::Postgres(schema), signal })
}

/// The suite for one adapter.
macro_rules! user_suite {
    ($adapter:ident, $fixture:ident) => {
        mod $adapter {
            use super::*;

            instantiate!($fixture:
                create_then_by_email_and_by_id_return_the_same_account,
                a_second_account_with_a_taken_email_is_refused,
                an_unknown_email_or_id_finds_no_account,
                rename_updates_the_user_and_returns_it,
                renaming_an_unknown_user_finds_nothing,
                a_totp_step_confirms_enrolment_and_is_never_accepted_twice,
                a_new_mfa_secret_replaces_an_unconfirmed_one_but_never_a_confirmed_one,
                addresses_are_listed_in_insertion_order_and_deleted_once,
                a_user_cannot_delete_another_users_address,
                a_password_reset_for_an_unknown_email_writes_nothing_and_builds_no_event,
                a_password_reset_for_a_known_email_records_its_event_in_the_outbox,
                a_commit_that_wrote_events_wakes_the_relay_and_nothing_else_does,
                a_reset_token_sets_the_password_once,
                an_identity_is_bound_once_and_claiming_an_unproven_account_ends_its_credentials,
                an_expired_reset_token_is_refused,
                using_one_reset_token_spends_the_accounts_other_tokens,
                search_matches_email_or_name_case_insensitively,
                search_treats_percent_underscore_and_backslash_literally,
                search_pages_by_id_in_disjoint_ordered_pages_covering_every_match,
                search_folds_case_beyond_ascii,
            );
        }
    };
}

user_suite!(sqlite, open_sqlite);
user_suite!(postgres, open_postgres);

// ---- helpers ----------------------------------------------------------------------------------

/// A customer account (not stored yet) with a fresh time-ordered id.
fn account(email: &str, name: &str) -> Account {
    Account {
        user: User {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.to_owned(),
            name: name.to_owned(),
            role: Role::Customer,
            created_at: at_ms(Utc::now()),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        mfa_secret: None,
        mfa_confirmed: false,
        mfa_last_step: 0,
        credentials_changed_at: 0,
        email_verified: false,
        cognito_sub: None,
    }
}

/// Stores a customer account.
async fn register(store: &dyn UserStore, email: &str, name: &str) -> Account {
    let account = account(email, name);
    store.create(&account, &[]).await.unwrap();
    account
}

/// Stores a customer account with the id `id`.
async fn register_as(store: &dyn UserStore, id: &str, email: &str, name: &str) {
    let mut account = account(email, name);
    account.user.id = id.to_owned();
    store.create(&account, &[]).await.unwrap();
}

/// `time`, truncated to the millisecond (what the stores keep).
fn at_ms(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap()
}

fn address(name: &str, line2: Option<&str>, region: Option<&str>) -> Address {
    Address {
        id: uuid::Uuid::now_v7().to_string(),
        address: AddressInput {
            name: name.to_owned(),
            line1: "1 Main St".to_owned(),
            line2: line2.map(str::to_owned),
            city: "Springfield".to_owned(),
            region: region.map(str::to_owned),
            postal_code: "12345".to_owned(),
            country: "US".to_owned(),
        },
    }
}

/// What an event factory was called with: the account id and the id of the event it built.
type Built = Arc<Mutex<Vec<(String, String)>>>;

/// An event factory that records each call in `built`.
fn reset_event(built: &Built) -> EventFactory {
    let built = built.clone();
    Box::new(move |user_id: &str| {
        let event = Event::new("user.password_reset_requested.v1", shop_user::NAME, json!({ "user_id": user_id }));
        built.lock().unwrap().push((user_id.to_owned(), event.id.clone()));
        event
    })
}

/// Records a reset token for `email` expiring at `expires_at`; whether an account has that email.
async fn request_reset(store: &dyn UserStore, email: &str, token_hash: &str, expires_at: i64) -> bool {
    let request = ResetRequest { email: email.to_owned(), token_hash: token_hash.to_owned(), expires_at };
    store.request_password_reset(request, reset_event(&Built::default())).await.unwrap()
}

/// An hour from now, in Unix ms.
fn in_an_hour() -> i64 {
    now_ms() + 3_600_000
}

fn ids(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.id.as_str()).collect()
}

// ---- the suite --------------------------------------------------------------------------------

async fn create_then_by_email_and_by_id_return_the_same_account(fx: &UserFixture) {
    let store = fx.store.as_ref();
    // Sub-millisecond precision that the stores drop.
    let created_at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let ada = Account {
        user: User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "ada@example.com".to_owned(),
            name: "Ada Lovelace".to_owned(),
            role: Role::Customer,
            created_at,
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$YWRh$aGFzaA".to_owned(),
        mfa_secret: None,
        mfa_confirmed: false,
        mfa_last_step: 0,
        credentials_changed_at: 0,
        email_verified: false,
        cognito_sub: None,
    };
    let root = Account {
        user: User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "root@example.com".to_owned(),
            name: "Root".to_owned(),
            role: Role::Admin,
            created_at: Utc::now(),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$cm9vdA$aGFzaA".to_owned(),
        mfa_secret: Some("JBSWY3DPEHPK3PXP".to_owned()),
        mfa_confirmed: true,
        mfa_last_step: 57_000_123,
        credentials_changed_at: 0,
        email_verified: false,
        cognito_sub: None,
    };
    for account in [&ada, &root] {
        store.create(account, &[]).await.unwrap();
    }
    for account in [&ada, &root] {
        let mut expected = account.clone();
        expected.user.created_at = at_ms(account.user.created_at);
        let by_email = store.by_email(&account.user.email).await.unwrap();
        assert_eq!(by_email.as_ref(), Some(&expected), "by_email({})", account.user.email);
        let by_id = store.by_id(&account.user.id).await.unwrap();
        assert_eq!(by_id.as_ref(), Some(&expected), "by_id({})", account.user.id);
    }
    let stored = store.by_id(&ada.user.id).await.unwrap().unwrap();
    assert_eq!(stored.user.created_at.timestamp_millis(), 1_700_000_000_123, "created_at keeps its milliseconds");
}

async fn a_second_account_with_a_taken_email_is_refused(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let first = register(store, "ada@example.com", "Ada").await;
    let second = account("ada@example.com", "Impostor");
    let result = store.create(&second, &[]).await;
    assert!(matches!(result, Err(StoreError::EmailTaken)), "{result:?}");
    assert_eq!(store.by_email("ada@example.com").await.unwrap().map(|a| a.user), Some(first.user));
    assert_eq!(store.by_id(&second.user.id).await.unwrap(), None, "nothing of the refused account is stored");
}

async fn an_unknown_email_or_id_finds_no_account(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register(store, "ada@example.com", "Ada").await;
    assert_eq!(store.by_email("grace@example.com").await.unwrap(), None);
    assert_eq!(store.by_id(&uuid::Uuid::now_v7().to_string()).await.unwrap(), None);
}

async fn rename_updates_the_user_and_returns_it(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let other = register(store, "grace@example.com", "Grace").await;
    let renamed = store.rename(&ada.user.id, "Ada King, Countess of Lovelace").await.unwrap();
    let expected = User { name: "Ada King, Countess of Lovelace".to_owned(), ..ada.user.clone() };
    assert_eq!(renamed.as_ref(), Some(&expected));
    assert_eq!(store.by_id(&ada.user.id).await.unwrap().map(|a| a.user), Some(expected));
    assert_eq!(store.by_id(&other.user.id).await.unwrap().map(|a| a.user), Some(other.user), "only that user");
}

async fn renaming_an_unknown_user_finds_nothing(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register(store, "ada@example.com", "Ada").await;
    assert_eq!(store.rename(&uuid::Uuid::now_v7().to_string(), "Nobody").await.unwrap(), None);
}

async fn a_totp_step_confirms_enrolment_and_is_never_accepted_twice(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let id = ada.user.id.as_str();
    assert!(!store.use_mfa_step(id, 100).await.unwrap(), "no step is accepted before enrolment");
    assert!(!store.use_mfa_step("no-such-user", 100).await.unwrap());

    store.set_mfa_secret(id, "SECRET1").await.unwrap();
    let enrolling = store.by_id(id).await.unwrap().unwrap();
    assert_eq!(enrolling.mfa_secret.as_deref(), Some("SECRET1"));
    assert!(!enrolling.mfa_confirmed, "enrolment waits for a code");

    assert!(store.use_mfa_step(id, 100).await.unwrap());
    let confirmed = store.by_id(id).await.unwrap().unwrap();
    assert!(confirmed.mfa_confirmed);
    assert_eq!(confirmed.mfa_last_step, 100);

    assert!(!store.use_mfa_step(id, 100).await.unwrap(), "the same step again is a replay");
    assert!(!store.use_mfa_step(id, 99).await.unwrap(), "an earlier step is a replay");
    assert_eq!(store.by_id(id).await.unwrap().unwrap().mfa_last_step, 100);
    assert!(store.use_mfa_step(id, 101).await.unwrap(), "a later step is accepted");
    assert!(!store.use_mfa_step(id, 101).await.unwrap());
    let account = store.by_id(id).await.unwrap().unwrap();
    assert_eq!(
        (account.mfa_secret.as_deref(), account.mfa_confirmed, account.mfa_last_step),
        (Some("SECRET1"), true, 101)
    );
}

async fn a_new_mfa_secret_replaces_an_unconfirmed_one_but_never_a_confirmed_one(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let id = ada.user.id.as_str();
    store.set_mfa_secret(id, "FIRST").await.unwrap();
    store.set_mfa_secret(id, "SECOND").await.unwrap();
    let enrolling = store.by_id(id).await.unwrap().unwrap();
    assert_eq!((enrolling.mfa_secret.as_deref(), enrolling.mfa_confirmed), (Some("SECOND"), false));

    assert!(store.use_mfa_step(id, 7).await.unwrap());
    store.set_mfa_secret(id, "ATTACKER").await.unwrap();
    let account = store.by_id(id).await.unwrap().unwrap();
    assert_eq!(
        (account.mfa_secret.as_deref(), account.mfa_confirmed, account.mfa_last_step),
        (Some("SECOND"), true, 7),
        "a confirmed secret stays"
    );
}

async fn addresses_are_listed_in_insertion_order_and_deleted_once(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let id = ada.user.id.as_str();
    assert_eq!(store.addresses(id).await.unwrap(), []);
    let home = address("Ada Lovelace", None, None);
    let work = address("Ada at work", Some("Floor 3"), Some("IL"));
    store.add_address(id, &home).await.unwrap();
    store.add_address(id, &work).await.unwrap();
    assert_eq!(store.addresses(id).await.unwrap(), [home.clone(), work.clone()]);

    assert!(store.delete_address(id, &home.id).await.unwrap());
    let remaining = [work];
    assert_eq!(store.addresses(id).await.unwrap(), remaining);
    assert!(!store.delete_address(id, &home.id).await.unwrap(), "a deleted address is gone");
    assert!(!store.delete_address(id, "no-such-address").await.unwrap());
    assert_eq!(store.addresses(id).await.unwrap(), remaining);
}

async fn a_user_cannot_delete_another_users_address(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let mallory = register(store, "mallory@example.com", "Mallory").await;
    let home = address("Ada Lovelace", None, None);
    store.add_address(&ada.user.id, &home).await.unwrap();
    assert!(!store.delete_address(&mallory.user.id, &home.id).await.unwrap());
    assert_eq!(store.addresses(&ada.user.id).await.unwrap(), [home]);
    assert_eq!(store.addresses(&mallory.user.id).await.unwrap(), [], "an address is listed only for its user");
}

async fn a_password_reset_for_an_unknown_email_writes_nothing_and_builds_no_event(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register(store, "ada@example.com", "Ada").await;
    let called = Arc::new(AtomicBool::new(false));
    let make_event: EventFactory = Box::new({
        let called = called.clone();
        move |user_id: &str| {
            called.store(true, Ordering::SeqCst);
            Event::new("user.password_reset_requested.v1", shop_user::NAME, json!({ "user_id": user_id }))
        }
    });
    let request = ResetRequest {
        email: "nobody@example.com".to_owned(),
        token_hash: "hash-1".to_owned(),
        expires_at: in_an_hour(),
    };
    assert!(!store.request_password_reset(request, make_event).await.unwrap());
    assert!(!called.load(Ordering::SeqCst), "no event is built for an unknown email");
    assert_eq!(fx.outbox().await, Vec::<String>::new());
    assert_eq!(store.reset_password("hash-1", "new-hash", now_ms()).await.unwrap(), None, "no token was recorded");
}

async fn a_password_reset_for_a_known_email_records_its_event_in_the_outbox(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let built = Built::default();
    let request =
        ResetRequest { email: "ada@example.com".to_owned(), token_hash: "hash-1".to_owned(), expires_at: in_an_hour() };
    assert!(store.request_password_reset(request, reset_event(&built)).await.unwrap());
    let built = built.lock().unwrap().clone();
    assert_eq!(built.len(), 1, "the event is built once");
    let (user_id, event_id) = &built[0];
    assert_eq!(user_id, &ada.user.id, "the event is built for the account's id");
    let outbox = fx.outbox().await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(outbox[0].contains(event_id.as_str()), "{} does not name the event {event_id}", outbox[0]);
}

async fn a_commit_that_wrote_events_wakes_the_relay_and_nothing_else_does(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    assert!(!fx.woke_the_relay(), "an account made without events");
    store.by_id(&ada.user.id).await.unwrap();
    store.rename(&ada.user.id, "Ada L.").await.unwrap();
    assert!(!fx.woke_the_relay(), "a read, a write without events");

    let mail = Event::new("user.email_verification_requested.v1", shop_user::NAME, json!({}));
    assert!(store.request_verification(&ada.user.id, &mail).await.unwrap());
    assert!(fx.woke_the_relay(), "a verification mail written");
    assert!(!store.request_verification("nobody", &mail).await.unwrap());
    assert!(!request_reset(store, "nobody@example.com", "hash-1", in_an_hour()).await);
    assert!(!fx.woke_the_relay(), "nothing written for an unknown account");

    assert!(request_reset(store, "ada@example.com", "hash-2", in_an_hour()).await);
    assert!(fx.woke_the_relay(), "a reset mail written");
    let welcome = Event::new("user.registered.v1", shop_user::NAME, json!({}));
    store.create(&account("grace@example.com", "Grace"), &[welcome]).await.unwrap();
    assert!(fx.woke_the_relay(), "an account made with its events");
    assert!(!fx.woke_the_relay(), "once per commit");
}

async fn a_reset_token_sets_the_password_once(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    assert!(request_reset(store, "ada@example.com", "hash-1", in_an_hour()).await);
    assert_eq!(store.reset_password("wrong-hash", "new-hash", now_ms()).await.unwrap(), None);
    assert_eq!(store.by_id(&ada.user.id).await.unwrap().unwrap().password_hash, ada.password_hash);

    assert_eq!(ada.credentials_changed_at, 0);
    let at = now_ms();
    assert_eq!(store.reset_password("hash-1", "new-hash", at).await.unwrap(), Some(ada.user.id.clone()));
    let reset = store.by_id(&ada.user.id).await.unwrap().unwrap();
    assert_eq!(
        (reset.password_hash.as_str(), reset.credentials_changed_at),
        ("new-hash", at),
        "sessions before it end"
    );

    assert_eq!(store.reset_password("hash-1", "newer-hash", now_ms()).await.unwrap(), None, "a token is single-use");
    assert_eq!(store.by_id(&ada.user.id).await.unwrap().unwrap().password_hash, "new-hash");

    // A change is conditional on the hash the current password was checked against, and spends
    // the reset tokens still out.
    assert!(request_reset(store, "ada@example.com", "hash-2", in_an_hour()).await);
    assert!(!store.change_password(&ada.user.id, "stale-hash", "changed", at + 10).await.unwrap());
    assert!(store.change_password(&ada.user.id, "new-hash", "changed", at + 10).await.unwrap());
    let changed = store.by_id(&ada.user.id).await.unwrap().unwrap();
    assert_eq!((changed.password_hash.as_str(), changed.credentials_changed_at), ("changed", at + 10));
    assert_eq!(store.reset_password("hash-2", "reset-again", now_ms()).await.unwrap(), None);
    assert!(!store.change_password("nobody", "changed", "x", at + 20).await.unwrap());
}

async fn an_identity_is_bound_once_and_claiming_an_unproven_account_ends_its_credentials(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    assert!(store.by_cognito_sub("sub-1").await.unwrap().is_none());
    let verified = platform::events::Event::new("user.email_verified.v1", "user", serde_json::json!({}));
    let before = fx.outbox().await.len();
    assert!(
        !store.verify_email(&ada.user.id, "other@example.com", &verified).await.unwrap(),
        "only the email it was sent to"
    );
    assert_eq!(fx.outbox().await.len(), before, "nothing said of an email not verified");
    // A new link is written for an unverified account only, with nothing else.
    let mails = fx.outbox().await.len();
    let again = platform::events::Event::new("user.email_verification_requested.v1", "user", serde_json::json!({}));
    assert!(store.request_verification(&ada.user.id, &again).await.unwrap());
    assert!(!store.request_verification("nobody", &again).await.unwrap());
    assert_eq!(fx.outbox().await.len(), mails + 1);
    assert!(store.verify_email(&ada.user.id, "ada@example.com", &verified).await.unwrap());
    assert_eq!(fx.outbox().await.len(), mails + 2, "the verification is told");
    assert!(!store.request_verification(&ada.user.id, &again).await.unwrap(), "verified: no more links");
    assert_eq!(fx.outbox().await.len(), mails + 2);
    assert!(store.by_id(&ada.user.id).await.unwrap().unwrap().email_verified);

    // A verified account keeps its password when an identity is bound, and nothing is told.
    let told = fx.outbox().await.len();
    assert!(store.link_cognito(&ada.user.id, "sub-1", None, 1_000).await.unwrap());
    assert_eq!(fx.outbox().await.len(), told, "it was verified already");
    let linked = store.by_cognito_sub("sub-1").await.unwrap().unwrap();
    assert_eq!(
        (linked.user.id.as_str(), linked.password_hash.as_str()),
        (ada.user.id.as_str(), ada.password_hash.as_str())
    );
    assert!(store.link_cognito(&ada.user.id, "sub-1", None, 1_001).await.unwrap(), "the same identity again");
    assert!(!store.link_cognito(&ada.user.id, "sub-2", None, 1_002).await.unwrap(), "one identity per account");

    // An unproven account claimed by an identity loses what its registrant set.
    let mut bob = account("bob@example.com", "Bob");
    bob.mfa_secret = Some("SECRET".into());
    bob.mfa_confirmed = true;
    store.create(&bob, &[]).await.unwrap();
    assert!(request_reset(store, "bob@example.com", "bob-reset", in_an_hour()).await);
    let told = fx.outbox().await.len();
    let pooled = platform::events::Event::new("user.email_verified.v1", "user", serde_json::json!({}));
    let claim = Claim { password_hash: "unknown-hash", verified: &pooled };
    assert!(!store.link_cognito("nobody", "sub-3", Some(claim), 5_000).await.unwrap());
    assert_eq!(fx.outbox().await.len(), told, "no account, nothing told");
    assert!(store.link_cognito(&bob.user.id, "sub-3", Some(claim), 5_000).await.unwrap());
    assert_eq!(fx.outbox().await.len(), told + 1, "the pool's verification is told with the claim");
    let claimed = store.by_id(&bob.user.id).await.unwrap().unwrap();
    assert_eq!(claimed.password_hash, "unknown-hash");
    assert_eq!((claimed.mfa_secret, claimed.mfa_confirmed), (None, false));
    assert_eq!((claimed.credentials_changed_at, claimed.email_verified), (5_000, true));
    assert_eq!(claimed.cognito_sub.as_deref(), Some("sub-3"));
    assert_eq!(store.reset_password("bob-reset", "x", now_ms()).await.unwrap(), None, "its reset tokens are spent");
    // An identity bound to one account cannot be bound to another.
    let mut carol = account("carol@example.com", "Carol");
    carol.cognito_sub = Some("sub-3".into());
    assert!(matches!(store.create(&carol, &[]).await, Err(StoreError::EmailTaken)));
}

async fn an_expired_reset_token_is_refused(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let now = now_ms();
    assert!(request_reset(store, "ada@example.com", "expired", now - 1).await);
    assert!(request_reset(store, "ada@example.com", "expiring-now", now).await);
    assert_eq!(store.reset_password("expired", "new-hash", now).await.unwrap(), None);
    assert_eq!(store.reset_password("expiring-now", "new-hash", now).await.unwrap(), None, "expires_at is exclusive");
    assert_eq!(store.by_id(&ada.user.id).await.unwrap().unwrap().password_hash, ada.password_hash);
}

async fn using_one_reset_token_spends_the_accounts_other_tokens(fx: &UserFixture) {
    let store = fx.store.as_ref();
    let ada = register(store, "ada@example.com", "Ada").await;
    let grace = register(store, "grace@example.com", "Grace").await;
    assert!(request_reset(store, "ada@example.com", "ada-1", in_an_hour()).await);
    assert!(request_reset(store, "ada@example.com", "ada-2", in_an_hour()).await);
    assert!(request_reset(store, "grace@example.com", "grace-1", in_an_hour()).await);

    assert_eq!(store.reset_password("ada-2", "new-hash", now_ms()).await.unwrap(), Some(ada.user.id.clone()));
    assert_eq!(store.reset_password("ada-1", "other-hash", now_ms()).await.unwrap(), None, "the older token died");
    assert_eq!(store.by_id(&ada.user.id).await.unwrap().unwrap().password_hash, "new-hash");
    assert_eq!(
        store.reset_password("grace-1", "grace-hash", now_ms()).await.unwrap(),
        Some(grace.user.id),
        "another account's token lives on"
    );
}

async fn search_matches_email_or_name_case_insensitively(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register_as(store, "u-a", "ada@example.com", "Ada Lovelace").await;
    register_as(store, "u-b", "grace@example.com", "Grace ADAMS").await;
    register_as(store, "u-c", "linus@adastral.example.org", "Linus").await;
    register_as(store, "u-d", "bob@example.com", "Bob").await;
    let search = |query: &'static str| async move { store.search(query, None, 100).await.unwrap() };

    assert_eq!(ids(&search("ADA").await), ["u-a", "u-b", "u-c"], "name or email, any case");
    assert_eq!(ids(&search("lOvElAcE").await), ["u-a"], "by name");
    assert_eq!(ids(&search("EXAMPLE.COM").await), ["u-a", "u-b", "u-d"], "by email");
    assert_eq!(ids(&search("astral").await), ["u-c"]);
    assert_eq!(search("nobody").await, []);
    let found = search("lovelace").await;
    let ada = store.by_id("u-a").await.unwrap().unwrap().user;
    assert_eq!(found, [ada], "search returns the whole user");
}

async fn search_treats_percent_underscore_and_backslash_literally(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register_as(store, "u-1", "p@example.com", "50% off").await;
    register_as(store, "u-2", "q@example.com", "5000 off").await;
    register_as(store, "u-3", "r@example.com", "snake_case").await;
    register_as(store, "u-4", "s@example.com", "snakeXcase").await;
    register_as(store, "u-5", "t@example.com", r"back\slash").await;
    register_as(store, "u-6", "u@example.com", "backslash").await;
    let search = |query: &'static str| async move { store.search(query, None, 100).await.unwrap() };

    assert_eq!(ids(&search("%").await), ["u-1"], "% is not a wildcard");
    assert_eq!(ids(&search("50% off").await), ["u-1"]);
    assert_eq!(ids(&search("_").await), ["u-3"], "_ is not a wildcard");
    assert_eq!(ids(&search("snake_case").await), ["u-3"]);
    assert_eq!(ids(&search(r"\").await), ["u-5"], "a backslash is not an escape");
    assert_eq!(ids(&search(r"back\s").await), ["u-5"]);
    assert_eq!(ids(&search(r"\%").await), Vec::<&str>::new());
}

async fn search_pages_by_id_in_disjoint_ordered_pages_covering_every_match(fx: &UserFixture) {
    let store = fx.store.as_ref();
    // Random ids: their order is not the order of creation.
    let mut matching = Vec::new();
    for i in 0..7 {
        let id = unique("u-");
        let name = if i % 2 == 0 { format!("Match {i}") } else { format!("mATCH {i}") };
        register_as(store, &id, &format!("m{i}@example.com"), &name).await;
        matching.push(id);
    }
    for i in 0..3 {
        register_as(store, &unique("u-"), &format!("other{i}@example.com"), &format!("Other {i}")).await;
    }
    matching.sort();

    let all = store.search("match", None, 100).await.unwrap();
    assert_eq!(ids(&all), matching, "every match, ordered by id");

    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.search("match", after.as_deref(), 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3, "a page holds at most `limit` users");
        after = page.last().map(|u| u.id.clone());
        pages.push(page);
        assert!(pages.len() <= 10, "paging does not end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let paged: Vec<User> = pages.into_iter().flatten().collect();
    assert_eq!(paged, all, "the pages are disjoint, in order, and cover every match");
    assert_eq!(store.search("match", Some(&matching[6]), 3).await.unwrap(), [], "nothing after the last");
    assert_eq!(store.search("match", None, 0).await.unwrap(), [], "a zero limit finds nothing");
}

async fn search_folds_case_beyond_ascii(fx: &UserFixture) {
    let store = fx.store.as_ref();
    register_as(store, "u-1", "emile@example.com", "ÉMILE Zola").await;
    register_as(store, "u-2", "asa@example.com", "Åsa Öberg").await;
    assert_eq!(ids(&store.search("émile", None, 100).await.unwrap()), ["u-1"]);
    assert_eq!(ids(&store.search("ÅSA ÖBERG", None, 100).await.unwrap()), ["u-2"]);
}
