//! The user service's HTTP API, driven through the real router and middleware stack on the SQLite
//! store and on PostgreSQL — every endpoint, with its failure paths and the token attacks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use platform::Config;
use platform::auth::{Claims, Role};
use platform::infra::Infra;
use serde_json::{Value, json};
use shop_user::app::keys::KeyRing;
use shop_user::domain::totp;
use shop_user::store::UserStore;
use shop_user::store::postgres::PgUserStore;
use shop_user::store::sqlite::SqliteUserStore;
use tower::ServiceExt;

use crate::conformance::PgSchema;

const PASSWORD: &str = "correct horse battery";

pub(crate) struct App {
    router: Router,
    pub(crate) users: Arc<dyn UserStore>,
    dir: tempfile::TempDir,
    /// The PostgreSQL schema the accounts live in, dropped by [`App::finish`].
    schema: Option<PgSchema>,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: axum::http::HeaderMap,
    pub(crate) body: Value,
}

/// The grace window of a spent refresh token in these tests.
const REFRESH_GRACE: Duration = Duration::from_millis(1_000);

/// The service on SQLite, or on PostgreSQL in `schema`.
async fn start(schema: Option<PgSchema>) -> App {
    start_with(schema, |_| {}).await
}

/// [`start`], with the configuration changed by `configure`.
pub(crate) async fn start_with(schema: Option<PgSchema>, configure: impl FnOnce(&mut Config)) -> App {
    platform::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.database_url = schema.as_ref().map(|schema| schema.url.clone().into());
    config.set("refresh_grace_ms", REFRESH_GRACE.as_millis() as u64);
    configure(&mut config);
    let infra = Infra::build(config, platform::events::Routing::of(shop_user::consumers::SUBSCRIPTIONS)).await.unwrap();
    let service = shop_user::build(infra.clone()).await.unwrap();
    let users: Arc<dyn UserStore> = match &schema {
        Some(schema) => Arc::new(PgUserStore::new(schema.pool.clone())),
        None => Arc::new(SqliteUserStore::new(platform::sqlite::Db::open(dir.path().join("user.db")).unwrap())),
    };
    App { router: infra.app(vec![service]), users, dir, schema }
}

async fn sqlite_app() -> Option<App> {
    Some(start(None).await)
}

async fn postgres_app() -> Option<App> {
    Some(start(Some(PgSchema::create().await?)).await)
}

impl App {
    /// Drops the test's PostgreSQL schema, if any.
    async fn finish(&self) {
        if let Some(schema) = &self.schema {
            schema.drop().await;
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>, peer: [u8; 4]) -> Reply {
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The token of the newest email to `to` whose subject is `subject` (the embedded mail
    /// folder), waiting for the mailer.
    /// The tokens of every email to `to` about `subject` so far.
    pub(crate) fn mailed_tokens(&self, to: &str, subject: &str) -> std::collections::HashSet<String> {
        let dir = self.dir.path().join("mail");
        let mails: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
            .unwrap_or_default();
        mails
            .iter()
            .filter(|m| m.contains(&format!("To: {to}")) && m.contains(subject))
            .filter_map(|m| {
                m.lines().map(str::trim).find(|l| l.starts_with("v1.") || (l.len() == 43 && !l.contains(' ')))
            })
            .map(str::to_owned)
            .collect()
    }

    pub(crate) async fn mailed_token(&self, to: &str, subject: &str) -> String {
        for _ in 0..200 {
            let dir = self.dir.path().join("mail");
            let mut mails: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(Result::ok).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
                .unwrap_or_default();
            mails.retain(|m| m.contains(&format!("To: {to}")) && m.contains(subject));
            if let Some(mail) = mails.first() {
                return mail
                    .lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("v1.") || (l.len() == 43 && !l.contains(' ')))
                    .expect("a token in the email")
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no email to {to} about {subject}");
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> Reply {
        self.send(method, path, body, token, [127, 0, 0, 1]).await
    }

    pub(crate) async fn register(&self, email: &str) -> Value {
        let reply = self
            .call("POST", "/v1/auth/register", Some(json!({"email": email, "password": PASSWORD, "name": "Ada"})), None)
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    async fn login(&self, email: &str, password: &str, totp: Option<String>) -> Reply {
        let mut body = json!({"email": email, "password": password});
        if let Some(code) = totp {
            body["totp"] = json!(code);
        }
        self.call("POST", "/v1/auth/login", Some(body), None).await
    }

    /// The keys the service signs with: in its database on PostgreSQL, else in its key folder.
    async fn keys(&self) -> KeyRing {
        match &self.schema {
            Some(schema) => KeyRing::from_postgres(&schema.pool).await.unwrap(),
            None => KeyRing::from_dir(&self.dir.path().join("secrets/jwt")).unwrap(),
        }
    }

    fn claims(&self, sub: &str, role: Role, amr: &[&str]) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: sub.into(),
            role,
            iss: "shop".into(),
            aud: "shop-api".into(),
            iat: now,
            nbf: None,
            exp: now + 300,
            amr: amr.iter().map(|s| s.to_string()).collect(),
            sid: None,
        }
    }
}

pub(crate) fn token(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body}")).to_owned()
}

pub(crate) fn code_now(secret: &str) -> String {
    totp::code_at(secret, chrono::Utc::now().timestamp() / totp::STEP_SECS).unwrap()
}

/// The suite on SQLite and on PostgreSQL (a fresh schema per test, dropped afterwards).
macro_rules! api_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            use super::*;

            instantiate!(sqlite_app: $($test),+);
        }
        mod postgres {
            use super::*;

            instantiate!(postgres_app: $($test),+);
        }
    };
}

api_suite!(
    registration_signs_in_and_a_taken_email_is_a_conflict,
    registration_refuses_weak_passwords_and_bad_emails_naming_the_field,
    a_bad_login_answers_the_same_whether_or_not_the_email_exists,
    repeated_failed_logins_are_throttled_per_account_and_per_address,
    parallel_guesses_never_pass_the_limits,
    a_guessed_at_account_slows_guesses_but_lets_its_owner_in,
    refresh_rotates_and_replaying_a_spent_token_revokes_the_session,
    two_tabs_refreshing_at_once_both_stay_signed_in,
    a_password_change_signs_out_every_other_session,
    a_password_changed_in_the_store_alone_ends_older_sessions,
    registration_mails_a_link_that_verifies_the_email,
    a_lost_verification_link_is_mailed_again_a_few_times_an_hour,
    logout_revokes_the_session,
    the_profile_is_read_and_changed_by_its_owner,
    the_address_book_belongs_to_its_owner,
    a_password_reset_mails_a_single_use_token_and_signs_out_everywhere,
    an_enrolled_second_factor_is_required_at_login,
    admin_routes_need_an_admin_with_a_second_factor,
    forged_expired_and_misaddressed_tokens_are_refused,
    the_published_key_set_verifies_issued_tokens,
);

async fn registration_signs_in_and_a_taken_email_is_a_conflict(app: &App) {
    let body = app.register("Ada@Example.com").await;
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "customer");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(!token(&body, "refresh_token").is_empty());
    let me = app.call("GET", "/v1/users/me", None, Some(&token(&body, "access_token"))).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], body["user"]["id"]);
    assert!(me.body["created_at"].is_string());
    let again = app
        .call(
            "POST",
            "/v1/auth/register",
            Some(json!({"email": " ADA@example.COM", "password": PASSWORD, "name": "B"})),
            None,
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.headers["content-type"], "application/problem+json");
}

async fn registration_refuses_weak_passwords_and_bad_emails_naming_the_field(app: &App) {
    for (body, field) in [
        (json!({"email": "a@example.com", "password": "short", "name": "A"}), "password"),
        (json!({"email": "a@example.com", "password": "password123", "name": "A"}), "password"),
        (json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}), "email"),
        (json!({"email": "a@example.com", "password": PASSWORD, "name": "  "}), "name"),
        // Not characters: no queue would carry the account's events (its reset mails).
        (json!({"email": "a\u{FFFE}@example.com", "password": PASSWORD, "name": "A"}), "email"),
        (json!({"email": "a@example.com", "password": PASSWORD, "name": "Ada\u{FFFF}"}), "name"),
    ] {
        let reply = app.call("POST", "/v1/auth/register", Some(body), None).await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert!(reply.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{}", reply.body);
    }
    let reply = app.call("POST", "/v1/auth/register", Some(json!({"email": "a@example.com"})), None).await;
    assert_eq!(reply.status, 422);
    // Nothing was created by the refused requests.
    assert!(app.users.by_email("a@example.com").await.unwrap().is_none());
}

async fn a_bad_login_answers_the_same_whether_or_not_the_email_exists(app: &App) {
    app.register("ada@example.com").await;
    let ok = app.login("ADA@example.com", PASSWORD, None).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let wrong_password = app.login("ada@example.com", "wrong password!", None).await;
    let no_account = app.login("nobody@example.com", "wrong password!", None).await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(no_account.status, 401);
    assert_eq!(wrong_password.body, no_account.body);
}

async fn repeated_failed_logins_are_throttled_per_account_and_per_address(app: &App) {
    app.register("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(app.login("ada@example.com", "wrong password!", None).await.status, 401);
    }
    let throttled = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(throttled.status, 429, "even the right password waits out the window");
    assert!(throttled.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);

    // One address guessing across many accounts is throttled too, and other addresses are not.
    app.register("bob@example.com").await;
    let attacker = [10, 9, 8, 7];
    for i in 0..20 {
        let body = json!({"email": format!("user{i}@example.com"), "password": "guess guess guess"});
        assert_eq!(app.send("POST", "/v1/auth/login", Some(body), None, attacker).await.status, 401);
    }
    let body = json!({"email": "bob@example.com", "password": PASSWORD});
    assert_eq!(app.send("POST", "/v1/auth/login", Some(body.clone()), None, attacker).await.status, 429);
    assert_eq!(app.send("POST", "/v1/auth/login", Some(body), None, [10, 0, 0, 2]).await.status, 200);
}

/// Sends `count` wrong-password logins to `email` at once, the n-th from `peer(n)`; the statuses.
async fn guesses(app: &App, email: &str, count: u8, peer: impl Fn(u8) -> [u8; 4]) -> Vec<u16> {
    let body = json!({"email": email, "password": "wrong password!"});
    let sends = (0..count).map(|n| app.send("POST", "/v1/auth/login", Some(body.clone()), None, peer(n)));
    futures::future::join_all(sends).await.into_iter().map(|reply| reply.status).collect()
}

async fn parallel_guesses_never_pass_the_limits(app: &App) {
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    // Fifty at once from one address: each is counted before its (slow) check, so at most the
    // limit reaches the password check; the rest are refused unchecked.
    let statuses = guesses(app, "ada@example.com", 50, |_| [10, 1, 1, 1]).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 50);
    // Fifty at once from fifty addresses: the account lets its share through, then one guess per
    // delay.
    let statuses = guesses(app, "bob@example.com", 50, |n| [10, 2, 0, n]).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 6, "{checked} guesses were checked: {statuses:?}");
}

async fn a_guessed_at_account_slows_guesses_but_lets_its_owner_in(app: &App) {
    app.register("ada@example.com").await;
    // Six addresses guess once each: the sixth takes the account's first delay.
    let statuses = guesses(app, "ada@example.com", 6, |n| [10, 3, 0, n]).await;
    assert_eq!(statuses, [401; 6]);
    let body = |password: &str| json!({"email": "ada@example.com", "password": password});
    let slowed = app.send("POST", "/v1/auth/login", Some(body("wrong password!")), None, [10, 3, 1, 0]).await;
    assert_eq!(slowed.status, 429, "a guess inside the delay waits");
    // The owner, at an address of their own, is slowed too, but never refused for the window.
    let mut owner = app.send("POST", "/v1/auth/login", Some(body(PASSWORD)), None, [192, 0, 2, 1]).await;
    for _ in 0..3 {
        if owner.status != 429 {
            break;
        }
        let wait = owner.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
        assert!(wait <= 30, "the delay is at most half a minute: {wait}");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        owner = app.send("POST", "/v1/auth/login", Some(body(PASSWORD)), None, [192, 0, 2, 1]).await;
    }
    assert_eq!(owner.status, 200, "{}", owner.body);
    // Signed in, the account's count starts again.
    assert_eq!(guesses(app, "ada@example.com", 1, |_| [10, 3, 2, 0]).await, [401]);
}

async fn refresh_rotates_and_replaying_a_spent_token_revokes_the_session(app: &App) {
    let first = app.register("ada@example.com").await;
    let r1 = token(&first, "refresh_token");
    let second = app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": r1})), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let r2 = token(&second.body, "refresh_token");
    assert_ne!(r1, r2);
    assert_eq!(app.call("GET", "/v1/users/me", None, Some(&token(&second.body, "access_token"))).await.status, 200);
    // Replaying the spent r1 past the grace window fails and revokes the family: r2 is dead too.
    tokio::time::sleep(REFRESH_GRACE + Duration::from_millis(100)).await;
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": r1})), None).await.status, 401);
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": r2})), None).await.status, 401);
    // Another session of the same user is unaffected.
    let other = app.login("ada@example.com", PASSWORD, None).await;
    let reply = app
        .call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": token(&other.body, "refresh_token")})), None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": "junk"})), None).await.status, 401);
}

async fn two_tabs_refreshing_at_once_both_stay_signed_in(app: &App) {
    let first = app.register("ada@example.com").await;
    let r1 = token(&first, "refresh_token");
    let body = json!({"refresh_token": r1});
    let (a, b) = tokio::join!(
        app.call("POST", "/v1/auth/refresh", Some(body.clone()), None),
        app.call("POST", "/v1/auth/refresh", Some(body.clone()), None)
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let (ra, rb) = (token(&a.body, "refresh_token"), token(&b.body, "refresh_token"));
    assert_eq!(ra, rb, "one successor for both tabs");
    // A retry after a lost answer gets it too, and it works.
    let retried = app.call("POST", "/v1/auth/refresh", Some(body), None).await;
    assert_eq!(token(&retried.body, "refresh_token"), ra);
    let next = app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": ra})), None).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(app.call("GET", "/v1/users/me", None, Some(&token(&next.body, "access_token"))).await.status, 200);
}

async fn a_password_change_signs_out_every_other_session(app: &App) {
    let first = app.register("ada@example.com").await;
    let second = app.login("ada@example.com", PASSWORD, None).await.body;
    let access = token(&first, "access_token");
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let path = "/v1/users/me/password";
    let wrong = app.call("POST", path, Some(change("not it at all", "a brand new secret")), Some(&access)).await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["errors"][0]["field"], "current_password", "{}", wrong.body);
    let weak = app.call("POST", path, Some(change(PASSWORD, "password")), Some(&access)).await;
    assert_eq!((weak.status, weak.body["errors"][0]["field"].as_str()), (422, Some("new_password")));
    assert_eq!(app.call("POST", path, Some(change(PASSWORD, "x")), None).await.status, 401);

    let changed = app.call("POST", path, Some(change(PASSWORD, "a brand new secret")), Some(&access)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    // Every session that began before is over; the caller's new one lives.
    for old in [&first, &second] {
        let refresh = json!({"refresh_token": token(old, "refresh_token")});
        assert_eq!(app.call("POST", "/v1/auth/refresh", Some(refresh), None).await.status, 401);
    }
    let refresh = json!({"refresh_token": token(&changed.body, "refresh_token")});
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(refresh), None).await.status, 200);
    assert_eq!(app.login("ada@example.com", PASSWORD, None).await.status, 401);
    assert_eq!(app.login("ada@example.com", "a brand new secret", None).await.status, 200);
}

async fn a_password_changed_in_the_store_alone_ends_older_sessions(app: &App) {
    let first = app.register("ada@example.com").await;
    let account = app.users.by_email("ada@example.com").await.unwrap().unwrap();
    // The password write alone (as if revoking the sessions afterwards failed) ends them.
    let now = chrono::Utc::now().timestamp_millis() + 5;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(app.users.change_password(&account.user.id, &account.password_hash, "new-hash", now).await.unwrap());
    assert!(
        !app.users.change_password(&account.user.id, &account.password_hash, "other", now).await.unwrap(),
        "only from the hash checked"
    );
    let refresh = json!({"refresh_token": token(&first, "refresh_token")});
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(refresh), None).await.status, 401);
}

async fn registration_mails_a_link_that_verifies_the_email(app: &App) {
    let registered = app.register("ada@example.com").await;
    let access = token(&registered, "access_token");
    assert!(!app.users.by_email("ada@example.com").await.unwrap().unwrap().email_verified);
    let me = app.call("GET", "/v1/users/me", None, Some(&access)).await;
    assert_eq!((me.status, &me.body["email_verified"]), (200, &json!(false)), "the profile says so");
    assert_eq!(me.body["email"], "ada@example.com");
    let token = app.mailed_token("ada@example.com", "Confirm your email address").await;
    let verify = |token: &str| json!({"token": token});
    for junk in ["junk", "v1.AAAA", &format!("{token}x")] {
        assert_eq!(app.call("POST", "/v1/auth/verify-email", Some(verify(junk)), None).await.status, 400, "{junk}");
    }
    assert!(!app.users.by_email("ada@example.com").await.unwrap().unwrap().email_verified);
    assert_eq!(app.call("POST", "/v1/auth/verify-email", Some(verify(&token)), None).await.status, 204);
    assert!(app.users.by_email("ada@example.com").await.unwrap().unwrap().email_verified);
    assert_eq!(
        app.call("POST", "/v1/auth/verify-email", Some(verify(&token)), None).await.status,
        204,
        "again: still verified"
    );
    let me = app.call("GET", "/v1/users/me", None, Some(&access)).await;
    assert_eq!(me.body["email_verified"], true);
    let resend = app.call("POST", "/v1/users/me/verify-email", None, Some(&access)).await;
    assert_eq!(resend.status, 409, "verified: no new link");
    assert_eq!(
        app.call("PATCH", "/v1/users/me", Some(json!({"name": "Ada L."})), Some(&access)).await.body["email_verified"],
        true
    );
}

async fn a_lost_verification_link_is_mailed_again_a_few_times_an_hour(app: &App) {
    let registered = app.register("bob@example.com").await;
    let access = token(&registered, "access_token");
    let first = app.mailed_token("bob@example.com", "Confirm your email address").await;
    assert_eq!(app.call("POST", "/v1/users/me/verify-email", None, None).await.status, 401);
    let statuses: Vec<u16> =
        futures::future::join_all((0..8).map(|_| app.call("POST", "/v1/users/me/verify-email", None, Some(&access))))
            .await
            .iter()
            .map(|reply| reply.status)
            .collect();
    let sent = statuses.iter().filter(|s| **s == 202).count();
    assert_eq!(sent, 5, "five links an hour, even asked for at once: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    // Any of the links verifies: the newest, or the first.
    let mut tokens = std::collections::HashSet::new();
    for _ in 0..200 {
        tokens = app.mailed_tokens("bob@example.com", "Confirm your email address");
        if tokens.len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(tokens.len(), 6, "the first mail and five more, each its own link");
    let newest = tokens.iter().find(|t| **t != first).unwrap().clone();
    assert_eq!(app.call("POST", "/v1/auth/verify-email", Some(json!({"token": newest})), None).await.status, 204);
    assert!(app.users.by_email("bob@example.com").await.unwrap().unwrap().email_verified);
}

async fn logout_revokes_the_session(app: &App) {
    let body = app.register("ada@example.com").await;
    let refresh = token(&body, "refresh_token");
    let reply = app
        .call("POST", "/v1/auth/logout", Some(json!({"refresh_token": refresh})), Some(&token(&body, "access_token")))
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": refresh})), None).await.status, 401);
    // A bearer token that is present must be valid.
    let reply = app.call("POST", "/v1/auth/logout", Some(json!({"refresh_token": "x"})), Some("garbage")).await;
    assert_eq!(reply.status, 401);
}

async fn the_profile_is_read_and_changed_by_its_owner(app: &App) {
    let body = app.register("ada@example.com").await;
    let access = token(&body, "access_token");
    assert_eq!(app.call("GET", "/v1/users/me", None, None).await.status, 401);
    let reply = app.call("PATCH", "/v1/users/me", Some(json!({"name": " Ada Lovelace "})), Some(&access)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["name"], "Ada Lovelace");
    let reply = app.call("PATCH", "/v1/users/me", Some(json!({"name": ""})), Some(&access)).await;
    assert_eq!(reply.status, 422);
    let reply = app.call("PATCH", "/v1/users/me", Some(json!({"role": "admin"})), Some(&access)).await;
    assert_eq!(reply.status, 422, "unknown fields (a role!) are refused");
    assert_eq!(app.call("GET", "/v1/users/me", None, Some(&access)).await.body["role"], "customer");
}

async fn the_address_book_belongs_to_its_owner(app: &App) {
    let ada = token(&app.register("ada@example.com").await, "access_token");
    let bob = token(&app.register("bob@example.com").await, "access_token");
    let address =
        json!({"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us"});
    let created = app.call("POST", "/v1/users/me/addresses", Some(address), Some(&ada)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["country"], "US");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let bad = json!({"name": "Ada", "line1": "", "city": "X", "postal_code": "1", "country": "USA"});
    let reply = app.call("POST", "/v1/users/me/addresses", Some(bad), Some(&ada)).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["errors"].as_array().unwrap().len(), 2);
    let list = app.call("GET", "/v1/users/me/addresses", None, Some(&ada)).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["next_cursor"], Value::Null);
    assert_eq!(app.call("GET", "/v1/users/me/addresses", None, Some(&bob)).await.body["items"], json!([]));
    // Bob cannot delete Ada's address: it is not found for him.
    assert_eq!(app.call("DELETE", &format!("/v1/users/me/addresses/{id}"), None, Some(&bob)).await.status, 404);
    assert_eq!(app.call("DELETE", &format!("/v1/users/me/addresses/{id}"), None, Some(&ada)).await.status, 204);
    assert_eq!(app.call("DELETE", &format!("/v1/users/me/addresses/{id}"), None, Some(&ada)).await.status, 404);
}

async fn a_password_reset_mails_a_single_use_token_and_signs_out_everywhere(app: &App) {
    let body = app.register("ada@example.com").await;
    let old_refresh = token(&body, "refresh_token");
    for email in ["ada@example.com", "nobody@example.com"] {
        let reply = app.call("POST", "/v1/auth/password-reset", Some(json!({"email": email})), None).await;
        assert_eq!(reply.status, 202);
    }
    // The mailer writes exactly one reset email (for the real account) to the mail folder.
    let mail_dir = app.dir.path().join("mail");
    let reset_token = app.mailed_token("ada@example.com", "Reset your password").await;
    let resets = std::fs::read_dir(&mail_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|m| m.contains("Reset your password"))
        .count();
    assert_eq!(resets, 1, "nothing is mailed about an address with no account");
    assert_eq!(reset_token.len(), 43);
    // The token reached the mailer sealed: no database, queue or dead letter holds it in the clear.
    let mut stores = vec![app.dir.path().to_path_buf()];
    while let Some(path) = stores.pop() {
        if path.is_dir() {
            stores.extend(std::fs::read_dir(&path).unwrap().filter_map(Result::ok).map(|e| e.path()));
        } else if !path.starts_with(&mail_dir) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !bytes.windows(reset_token.len()).any(|w| w == reset_token.as_bytes()),
                "{} holds the token",
                path.display()
            );
        }
    }

    let weak = app
        .call(
            "POST",
            "/v1/auth/password-reset/confirm",
            Some(json!({"token": reset_token, "new_password": "short"})),
            None,
        )
        .await;
    assert_eq!(weak.status, 422);
    let new_password = "a brand new passphrase";
    let reply = app
        .call(
            "POST",
            "/v1/auth/password-reset/confirm",
            Some(json!({"token": reset_token, "new_password": new_password})),
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let again = app
        .call(
            "POST",
            "/v1/auth/password-reset/confirm",
            Some(json!({"token": reset_token, "new_password": new_password})),
            None,
        )
        .await;
    assert_eq!(again.status, 400, "a reset token works once");
    assert_eq!(app.login("ada@example.com", PASSWORD, None).await.status, 401);
    assert_eq!(app.login("ada@example.com", new_password, None).await.status, 200);
    assert_eq!(
        app.call("POST", "/v1/auth/refresh", Some(json!({"refresh_token": old_refresh})), None).await.status,
        401
    );
}

async fn an_enrolled_second_factor_is_required_at_login(app: &App) {
    let access = token(&app.register("ada@example.com").await, "access_token");
    let setup = app.call("POST", "/v1/auth/mfa/setup", None, Some(&access)).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(setup.body["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    // Until confirmed, login needs no code.
    assert_eq!(app.login("ada@example.com", PASSWORD, None).await.status, 200);
    let wrong = app.call("POST", "/v1/auth/mfa/verify", Some(json!({"code": "000000"})), Some(&access)).await;
    assert_eq!(wrong.status, 422);
    // Codes are throttled as passwords are: guessing the six digits stops at the limit.
    let guesses = (0..20).map(|n| {
        app.call("POST", "/v1/auth/mfa/verify", Some(json!({"code": format!("{:06}", 100 + n)})), Some(&access))
    });
    let statuses: Vec<u16> = futures::future::join_all(guesses).await.into_iter().map(|r| r.status).collect();
    assert!(statuses.iter().filter(|s| **s == 422).count() <= 4, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // The owner at another address, with the right code, gets through.
    let code = code_now(&secret);
    let confirmed = app
        .send("POST", "/v1/auth/mfa/verify", Some(json!({"code": code.clone()})), Some(&access), [192, 0, 2, 9])
        .await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.body);
    assert_eq!(app.call("POST", "/v1/auth/mfa/setup", None, Some(&access)).await.status, 409);
    let without = app.login("ada@example.com", PASSWORD, None).await;
    assert_eq!(without.status, 401);
    assert_eq!(without.body["type"], "/problems/mfa-required");
    // The code just used cannot be replayed; the next step's code can be used.
    assert_eq!(app.login("ada@example.com", PASSWORD, Some(code)).await.status, 401);
    let next = totp::code_at(&secret, chrono::Utc::now().timestamp() / totp::STEP_SECS + 1).unwrap();
    let with = app.login("ada@example.com", PASSWORD, Some(next)).await;
    assert_eq!(with.status, 200, "{}", with.body);
}

async fn admin_routes_need_an_admin_with_a_second_factor(app: &App) {
    let (admin, uri) =
        shop_user::app::admin::create_admin(app.users.as_ref(), "root@example.com", PASSWORD, "Root").await.unwrap();
    assert_eq!(admin.role, Role::Admin);
    let secret = url::Url::parse(&uri).unwrap().query_pairs().find(|(k, _)| k == "secret").unwrap().1.into_owned();
    let customer = token(&app.register("ada@example.com").await, "access_token");

    assert_eq!(app.call("GET", "/admin/v1/users", None, None).await.status, 401);
    assert_eq!(app.call("GET", "/admin/v1/users", None, Some(&customer)).await.status, 403);
    // An admin signs in with password and TOTP.
    let no_code = app.login("root@example.com", PASSWORD, None).await;
    assert_eq!(no_code.status, 401);
    let login = app.login("root@example.com", PASSWORD, Some(code_now(&secret))).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let admin_token = token(&login.body, "access_token");
    let page = app.call("GET", "/admin/v1/users?q=EXAMPLE.com&limit=1", None, Some(&admin_token)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app
        .call("GET", &format!("/admin/v1/users?q=example.com&limit=1&cursor={cursor}"), None, Some(&admin_token))
        .await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);
    assert_eq!(app.call("GET", "/admin/v1/users?limit=1000", None, Some(&admin_token)).await.status, 422);
    // An admin token without the second factor (signed with the real key) is refused.
    let no_mfa = app.keys().await.sign(&app.claims(&admin.id, Role::Admin, &["pwd"]));
    assert_eq!(app.call("GET", "/admin/v1/users", None, Some(&no_mfa)).await.status, 403);
}

async fn forged_expired_and_misaddressed_tokens_are_refused(app: &App) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let user = app.register("ada@example.com").await["user"]["id"].as_str().unwrap().to_owned();
    let keys = app.keys().await;
    let good = keys.sign(&app.claims(&user, Role::Customer, &["pwd"]));
    assert_eq!(app.call("GET", "/v1/users/me", None, Some(&good)).await.status, 200);

    let mut expired = app.claims(&user, Role::Customer, &["pwd"]);
    expired.iat -= 3600;
    expired.exp = chrono::Utc::now().timestamp() - 120;
    let mut early = app.claims(&user, Role::Customer, &["pwd"]);
    early.nbf = Some(chrono::Utc::now().timestamp() + 600);
    let mut audience = app.claims(&user, Role::Customer, &["pwd"]);
    audience.aud = "another-api".into();
    let mut issuer = app.claims(&user, Role::Customer, &["pwd"]);
    issuer.iss = "someone-else".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&app.claims(&user, Role::Admin, &["pwd", "otp"])).unwrap());
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, keys.current_kid()));
    let none = format!("{header}.{payload}.");
    let x = keys.jwks().keys[0].clone();
    let public = serde_json::to_value(&x).unwrap()["x"].as_str().unwrap().to_owned();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(keys.current_kid().to_owned());
    let hmac = jsonwebtoken::encode(
        &hs,
        &app.claims(&user, Role::Admin, &["pwd", "otp"]),
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = &payload;
    let tampered = parts.join(".");
    for (case, token) in [
        ("expired", keys.sign(&expired)),
        ("not yet valid", keys.sign(&early)),
        ("wrong audience", keys.sign(&audience)),
        ("wrong issuer", keys.sign(&issuer)),
        ("alg none", none),
        ("HMAC keyed with the public key", hmac),
        ("tampered payload", tampered),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let reply = app.call("GET", "/v1/users/me", None, Some(&token)).await;
        assert_eq!(reply.status, 401, "{case}");
        assert_eq!(reply.headers["content-type"], "application/problem+json", "{case}");
    }
}

async fn the_published_key_set_verifies_issued_tokens(app: &App) {
    let body = app.register("ada@example.com").await;
    let jwks = app.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.status, 200);
    let keys = jwks.body["keys"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519" && k.get("d").is_none()),
        "public keys only"
    );
    // A verifier that only knows the published set accepts the token.
    let verifier = platform::auth::TokenVerifier::local("shop", "shop-api");
    verifier.set_keys(&serde_json::from_value(jwks.body.clone()).unwrap());
    let claims = verifier.verify(&token(&body, "access_token")).await.unwrap();
    assert_eq!(claims.sub, body["user"]["id"].as_str().unwrap());
    assert!(claims.sid.is_some());
}

/// An independent implementation (PyJWT) verifies a token against the JWKS served over HTTP.
#[tokio::test]
async fn an_independent_jwt_library_verifies_issued_tokens_against_the_published_keys() {
    let Some(python) = platform::testing::server_env("SHOP_TEST_PYTHON") else { return };
    let app = start(None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(
        async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await },
    );
    let body = app.register("ada@example.com").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/verify-jwt.py");
    let jwks_url = format!("http://{address}/.well-known/jwks.json");
    let verify = |token: String| {
        tokio::process::Command::new(&python).arg(script).arg(&jwks_url).arg(token).args(["shop", "shop-api"]).output()
    };
    let output = verify(token(&body, "access_token")).await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(claims["sub"], body["user"]["id"]);
    assert_eq!(claims["role"], "customer");
    // And it refuses a tampered one.
    let output = verify(format!("{}x", token(&body, "access_token"))).await.unwrap();
    assert!(!output.status.success());
}
