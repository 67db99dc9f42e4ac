//! Sign-in with a Cognito user pool's ID tokens, against a stand-in pool that publishes its key
//! set the way Cognito does (`<issuer>/.well-known/jwks.json`).

use axum::Json;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::http::{App, start_with};

/// The stand-in pool's RSA signing key (PKCS#1 DER, base64): made for these tests, signs nothing
/// else.
const POOL_KEY: &str = concat!(
    "MIIEowIBAAKCAQEAyUBx08XjGHESdumWse4vxE/Tg7O9FKlDV59cP5sZzfNY3/xw5Ka8CECwqJ8y",
    "ETTAWdpiafG58XEorHgCwSsblWd1MbrYID+7b3S0Oru+4x9Yxa6sP9w16hTkjhdHZWif/Oqnnwwc",
    "aePrt/4ncXNHSfhfCQInsvb796KCEIY1Gp/EUZOS772L5YFRnxz/0oCs+Y6XKLX2QbNRLNMFFpCq",
    "J9urGpKwwzPcQ9WWBiUxBojQENdIMp2GrxXWdahDJJd05xg4Z0OQKi4Mv6i/8eaPaLcnnxerXxaf",
    "LAH6/khyqYXFch8Pv+Tyixekg/LqWzBF8/qaNIIoGXwkGcZuODv1MwIDAQABAoIBABR5PmXlb/dz",
    "arCh4zHsbHvuWl2/zMthIYKJ/0f8lDuhTILTkHvqbHRIedBbCwG4xJ1qJps8O1w71KqgYONcP9JL",
    "Xp71sPlYPSNsaM4VfdNm7nsvNxhzY3a8s7hdgjwSUJMEdOiswj08MdBGMPwNLAzzPAkoviIqQd2M",
    "8OoTxSuVM9Ww65PQrasHGmAJBDrJgwVzewCJO7+D4Plnlq93UEjNzX1dgCJSG/ISnFKoyiEezccq",
    "qAz2RR8drj5HK3yGUHVLaqfuE7BEvFgC7vReEL8yzXF5pRE8HYKL+qY9wxfyDCPrRLGkiAdW4nDm",
    "oXGps6JK9hrhO9379C5ZVY/wJ+UCgYEA/raCMqB6Yywhlqx87pGtYquUIQ3RfHQipnHvm3WFqUYQ",
    "pOVZ7BzHRTscMNRsLxnXbz5/euSEe4bmJxfuzZTGwyA5LZVfHUhSp8wxNH1UDhoFW608POhn9kqF",
    "7V6c1F73ekFGOmFBzCaf/VkpY9MX9ECvx53bTRT4K3qw96ARIb0CgYEAykTHniosd47sAu/iT7ud",
    "0RsDNHOlEJkfYGoQ/jEb6GLzg/pFDiYn2VHZb2+Ww/E572DlEcZ/ttqk/LtDXxx3Ed/PACUdl4gm",
    "xR0Q5dMAud54e8e0320YXSy2G8imYIckHbEGyLpGs8t4k5loFF9CrdC1C7d5hk/GO1tWgupzSa8C",
    "gYEAiYaPS7h7/DnitNDS75i2ThUn+KTWW+T0pHvWDFDq5xeOewnegG6VZRriQLcg5lmEiWrsN7VU",
    "lsGiWK9CX7uZiddHKAaDgXMANds5IgcdMDP6eqJRaO1u3HsmTqCL+tp/soG14mWKuiiMr6TJhT1/",
    "rICUqCniM39D823eSQUi2t0CgYBTMrldMIG759jiWGOhYk3G7jKCR7M0wZcrZFV7CR4ul00NE0uG",
    "R2GKvWUPtjmwfS/Ua+mtRxXPU94bareKjr3XZ1TQ/XNPmhxAZfVGY2VgDsdGOt4GLOyhnruFcCIn",
    "gE71u5RLyns8h0wggjBSeOCHeFqP6DcfbP7f+XD7Ro6HVwKBgESd65QN2DylwENJPkNSjU0B1nz5",
    "Zel6OJXCVhFtww/BbDe8/ycFs2uy/R1omz9w3n7o2dcnzs+Vqnv7MQ6IqO0pUXd5pJVX2J6PRWAE",
    "e1Zl85FKj8C7tipQZkFVTC1IWXFySF2w/82W0WbRaP+v8FsPlly+j6B8LtY9VcJGLPxc",
);
/// The app client the shop trusts.
const CLIENT_ID: &str = "shop-mobile-test-client";

struct Pool {
    issuer: String,
    key: EncodingKey,
}

impl Pool {
    /// Serves the key set on a local port; the pool's issuer URL.
    async fn start() -> Self {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD.decode(POOL_KEY).unwrap();
        let key = EncodingKey::from_rsa_der(&der);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("pool-key-1".into());
        let set = JwkSet { keys: vec![jwk] };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/us-east-1_TestPool", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/us-east-1_TestPool/.well-known/jwks.json", get(move || async move { Json(set.clone()) }));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { issuer, key }
    }

    /// An ID token as the pool issues them, with `changes` applied to its claims.
    fn id_token(&self, email: &str, changes: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": uuid::Uuid::new_v4().to_string(),
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
            "email": email,
            "email_verified": true,
            "name": "Grace Hopper",
            "cognito:username": "grace",
        });
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("pool-key-1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

async fn app(pool: &Pool) -> App {
    let issuer: url::Url = pool.issuer.parse().unwrap();
    start_with(None, |config| {
        config.set("cognito_issuer", issuer.as_str());
        config.set("cognito_client_id", CLIENT_ID);
    })
    .await
}

fn email() -> String {
    format!("grace-{}@example.com", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_first_sign_in_makes_the_account_and_later_ones_find_it() {
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let email = email();
    let sub = uuid::Uuid::new_v4().to_string();
    let first = pool.id_token(&email, json!({"sub": sub}));
    let first = app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": first})), None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["user"]["email"], email.as_str());
    assert_eq!(first.body["user"]["name"], "Grace Hopper");
    assert_eq!(first.body["user"]["role"], "customer");
    // The shop's own token works on the shop's API.
    let token = first.body["access_token"].as_str().unwrap();
    let me = app.call("GET", "/v1/users/me", None, Some(token)).await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(email.as_str())));

    // Another sign-in (another token of the same identity; older pools say "true") finds it.
    let again = pool.id_token(&email.to_uppercase(), json!({"email_verified": "true", "sub": sub}));
    let second = app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": again})), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["user"]["id"], first.body["user"]["id"]);
    assert!(second.body["refresh_token"].is_string());
}

#[tokio::test]
async fn an_account_registered_with_a_password_is_signed_in_by_its_verified_email() {
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let email = email();
    let registered = app.register(&email).await;
    let reply =
        app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": pool.id_token(&email, json!({}))})), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["user"]["id"], registered["user"]["id"]);
}

#[tokio::test]
async fn an_identity_claiming_an_unproven_account_ends_the_registrants_password_sessions_and_second_factor() {
    use crate::http::{code_now, token};
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let victim = email();
    // An attacker registers the victim's address first, and even confirms a second factor.
    let attacker = app.register(&victim).await;
    let access = token(&attacker, "access_token");
    let setup = app.call("POST", "/v1/auth/mfa/setup", None, Some(&access)).await;
    let code = code_now(setup.body["secret"].as_str().unwrap());
    assert_eq!(app.call("POST", "/v1/auth/mfa/verify", Some(json!({"code": code})), Some(&access)).await.status, 204);
    // The owner signs in through the pool, which verified the address: the account is theirs now.
    let owner =
        app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": pool.id_token(&victim, json!({}))})), None).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    assert_eq!(owner.body["user"]["id"], attacker["user"]["id"]);
    let refresh = json!({"refresh_token": token(&attacker, "refresh_token")});
    assert_eq!(
        app.call("POST", "/v1/auth/refresh", Some(refresh), None).await.status,
        401,
        "the attacker's session ended"
    );
    let login = json!({"email": victim, "password": "correct horse battery"});
    assert_eq!(app.call("POST", "/v1/auth/login", Some(login), None).await.status, 401, "and their password");
    let account = app.users.by_email(&victim).await.unwrap().unwrap();
    assert!(account.email_verified && !account.mfa_confirmed && account.mfa_secret.is_none());
    let me = app.call("GET", "/v1/users/me", None, Some(&token(&owner.body, "access_token"))).await;
    assert_eq!(me.status, 200);
    let refresh = json!({"refresh_token": token(&owner.body, "refresh_token")});
    assert_eq!(
        app.call("POST", "/v1/auth/refresh", Some(refresh), None).await.status,
        200,
        "the owner's session lives"
    );
}

#[tokio::test]
async fn a_verified_account_keeps_its_password_and_binds_one_identity() {
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let email = email();
    app.register(&email).await;
    let verification = app.mailed_token(&email, "Confirm your email address").await;
    assert_eq!(app.call("POST", "/v1/auth/verify-email", Some(json!({"token": verification})), None).await.status, 204);
    let sub = uuid::Uuid::new_v4().to_string();
    let signed_in = pool.id_token(&email, json!({"sub": sub}));
    assert_eq!(app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": signed_in})), None).await.status, 200);
    let login = json!({"email": email, "password": "correct horse battery"});
    assert_eq!(app.call("POST", "/v1/auth/login", Some(login), None).await.status, 200, "the owner's password stays");
    // Another identity of the pool with the same address does not take the account.
    let other = pool.id_token(&email, json!({"sub": uuid::Uuid::new_v4().to_string()}));
    assert_eq!(app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": other})), None).await.status, 409);
    assert_eq!(app.users.by_email(&email).await.unwrap().unwrap().cognito_sub.as_deref(), Some(sub.as_str()));
}

#[tokio::test]
async fn tokens_the_pool_did_not_issue_to_the_shop_are_refused_and_change_nothing() {
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let email = email();
    let now = chrono::Utc::now().timestamp();
    let other_key = {
        let other = Pool { issuer: pool.issuer.clone(), key: EncodingKey::from_secret(b"not the pool's key") };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("pool-key-1".into());
        let claims = json!({"sub": "x", "iss": other.issuer, "aud": CLIENT_ID, "token_use": "id", "iat": now, "exp": now + 3600, "email": email, "email_verified": true});
        jsonwebtoken::encode(&header, &claims, &other.key).unwrap()
    };
    let mut tampered = pool.id_token(&email, json!({}));
    tampered.push('x');
    let cases = [
        ("another app client", pool.id_token(&email, json!({"aud": "someone-elses-client"}))),
        (
            "another pool",
            pool.id_token(&email, json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"})),
        ),
        ("an access token", pool.id_token(&email, json!({"token_use": "access"}))),
        ("expired", pool.id_token(&email, json!({"iat": now - 7200, "exp": now - 3600}))),
        ("an unverified email", pool.id_token(&email, json!({"email_verified": false}))),
        ("no email", pool.id_token(&email, json!({"email": null}))),
        ("an unknown key", {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("another-key".into());
            let claims = json!({"sub": "x", "iss": pool.issuer, "aud": CLIENT_ID, "token_use": "id", "iat": now, "exp": now + 3600, "email": email, "email_verified": true});
            jsonwebtoken::encode(&header, &claims, &pool.key).unwrap()
        }),
        ("a symmetric signature", other_key),
        ("a bad signature", tampered),
        ("not a token", "not-a-token".to_owned()),
    ];
    for (case, token) in cases {
        let reply = app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": token})), None).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.body);
        assert!(reply.body["type"].is_string(), "{case}: a problem document");
    }
    assert!(app.users.by_email(&email).await.unwrap().is_none(), "no account was made");
    let bad = app.call("POST", "/v1/auth/cognito", Some(json!({"token": "x"})), None).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}

#[tokio::test]
async fn admins_sign_in_with_their_password_and_second_factor_only() {
    let pool = Pool::start().await;
    let app = app(&pool).await;
    let email = email();
    shop_user::app::admin::create_admin(app.users.as_ref(), &email, "correct horse battery", "Root").await.unwrap();
    let reply =
        app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": pool.id_token(&email, json!({}))})), None).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body["access_token"].is_null());
}

#[tokio::test]
async fn without_a_pool_the_endpoint_is_not_there() {
    let app = start_with(None, |_| {}).await;
    let reply = app.call("POST", "/v1/auth/cognito", Some(json!({"id_token": "x"})), None).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
}
