//! Access-token verification shared by every service.
//!
//! Access tokens are JWTs signed by the user service with Ed25519 (`EdDSA`) and published as a JWK
//! set at `/.well-known/jwks.json`. Every service verifies them locally with a [`TokenVerifier`]: from
//! a key set handed over in-process (the embedded mode) or fetched and cached from a JWKS URL (the
//! user service's, or Cognito's). Only asymmetric algorithms are accepted, each only with a key of
//! its own type, so `alg: none` and the HMAC-with-a-public-key trick fail; so do expired,
//! not-yet-valid, wrong-issuer, wrong-audience, unknown-key and tampered tokens.
//!
//! Handlers ask for [`AuthUser`] (any signed-in user) or [`AdminUser`] (an admin whose token
//! carries a confirmed second factor); they answer 401 and 403 as problem+json.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::ApiError;

/// How long a fetched JWK set is trusted before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// The soonest an unknown `kid` may cause another fetch (so garbage tokens cannot hammer the issuer).
const JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 30;
/// How many verified tokens are remembered (a few MiB at most; all forgotten when full).
const VERIFIED_CAPACITY: usize = 4_096;
/// How long a token's verification is remembered: a key withdrawn from the issuer's set stops
/// tokens signed with it within this long, even those verified just before.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// What a user may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A shopper.
    #[default]
    Customer,
    /// An operator of the shop.
    Admin,
}

impl Role {
    /// The role's name as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's role; a token without one (a Cognito token) is a customer's.
    #[serde(default)]
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// How the user authenticated (RFC 8176): `pwd`, and `otp` after a TOTP second factor.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The refresh-token family (session) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// Whether the user passed a second factor.
    pub fn has_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "otp" || m == "mfa")
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token does not verify (bad signature, expired, wrong issuer or audience, …).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The signing key is not known.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key set could not be fetched.
    #[error("the key set could not be fetched")]
    Jwks(#[source] Box<dyn std::error::Error + Send + Sync>),
}

enum Source {
    /// Keys handed over in-process; replaced when the issuer rotates.
    Local,
    /// Keys fetched from a JWKS URL.
    Remote { url: Url, client: reqwest::Client },
}

struct Keys {
    by_kid: HashMap<String, (Arc<DecodingKey>, Algorithm)>,
    fetched_at: Option<Instant>,
}

/// Verifies access tokens.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    /// The checks of a token, by accepted algorithm (made once: they do not change).
    validations: [(Algorithm, Validation); 2],
    source: Source,
    keys: RwLock<Keys>,
    fetch: tokio::sync::Mutex<()>,
    /// Tokens whose signature verified lately, with their claims: a shopper's token is checked on
    /// every request, and checking a signature costs more than the rest of a cheap request.
    verified: RwLock<HashMap<Box<str>, (Claims, Instant)>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

/// The decoding key and algorithm of a JWK, for the asymmetric types we accept; `None` for others.
fn decoding_key(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            DecodingKey::from_ed_components(&okp.x).ok().map(|k| (k, Algorithm::EdDSA))
        }
        AlgorithmParameters::RSA(rsa) => {
            DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok().map(|k| (k, Algorithm::RS256))
        }
        _ => None,
    }
}

fn index(set: &JwkSet) -> HashMap<String, (Arc<DecodingKey>, Algorithm)> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let (key, algorithm) = decoding_key(jwk)?;
            Some((jwk.common.key_id.clone()?, (Arc::new(key), algorithm)))
        })
        .collect()
}

/// What a token signed with `algorithm` must satisfy.
fn validation(algorithm: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation
}

impl TokenVerifier {
    /// A verifier whose keys are handed over in-process with [`TokenVerifier::set_keys`].
    pub fn local(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::with_source(issuer, audience, Source::Local)
    }

    /// A verifier that fetches (and caches) its keys from `jwks_url`.
    pub fn remote(issuer: impl Into<String>, audience: impl Into<String>, jwks_url: Url) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("an HTTP client builds");
        Self::with_source(issuer, audience, Source::Remote { url: jwks_url, client })
    }

    fn with_source(issuer: impl Into<String>, audience: impl Into<String>, source: Source) -> Self {
        let (issuer, audience) = (issuer.into(), audience.into());
        let validations = [Algorithm::EdDSA, Algorithm::RS256].map(|a| (a, validation(a, &issuer, &audience)));
        Self {
            issuer,
            audience,
            validations,
            source,
            keys: RwLock::new(Keys { by_kid: HashMap::new(), fetched_at: None }),
            fetch: tokio::sync::Mutex::new(()),
            verified: RwLock::new(HashMap::new()),
        }
    }

    /// Replaces the key set (the issuer calls this in-process after it loads or rotates its keys).
    pub fn set_keys(&self, set: &JwkSet) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.by_kid = index(set);
        keys.fetched_at = Some(Instant::now());
        self.forget_verified();
    }

    /// Forgets every remembered verification (the keys changed).
    fn forget_verified(&self) {
        self.verified.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn lookup(&self, kid: &str) -> (Option<(Arc<DecodingKey>, Algorithm)>, Option<Instant>) {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        (keys.by_kid.get(kid).cloned(), keys.fetched_at)
    }

    async fn refresh(&self, url: &Url, client: &reqwest::Client, force: bool) -> Result<(), AuthError> {
        let _one_at_a_time = self.fetch.lock().await;
        let fetched_at = self.keys.read().unwrap_or_else(|e| e.into_inner()).fetched_at;
        let fresh = fetched_at.is_some_and(|at| at.elapsed() < if force { JWKS_REFETCH_COOLDOWN } else { JWKS_TTL });
        if fresh {
            return Ok(());
        }
        let fetched = async {
            let response = client.get(url.clone()).send().await?.error_for_status()?;
            response.json::<JwkSet>().await
        }
        .await;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        // Stamp even a failed fetch, so the cooldown holds while the issuer is down.
        keys.fetched_at = Some(Instant::now());
        let set = fetched.map_err(|e| AuthError::Jwks(Box::new(e)))?;
        keys.by_kid = index(&set);
        drop(keys);
        self.forget_verified();
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<(Arc<DecodingKey>, Algorithm), AuthError> {
        let (found, fetched_at) = self.lookup(kid);
        match &self.source {
            Source::Local => found.ok_or(AuthError::UnknownKey),
            Source::Remote { url, client } => {
                let stale = fetched_at.is_none_or(|at| at.elapsed() >= JWKS_TTL);
                let unknown = found.is_none();
                if let Some(key) = found.filter(|_| !stale) {
                    return Ok(key);
                }
                // Unknown kid (the issuer rotated) or a stale set: fetch again, within the cooldown.
                if let Err(error) = self.refresh(url, client, unknown).await {
                    tracing::warn!(error = %crate::error::cause_chain(&error), "JWKS fetch failed");
                }
                self.lookup(kid).0.ok_or(AuthError::UnknownKey)
            }
        }
    }

    /// Verifies `token` and returns its claims.
    /// A token verified within [`VERIFIED_FOR`] (byte for byte the same) is not verified again,
    /// but its times still are: it is refused once it expires, as a token seen first would be.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let remembered = self.verified.read().unwrap_or_else(|e| e.into_inner()).get(token).and_then(|(claims, at)| {
            let leeway = LEEWAY_SECS as i64;
            let current = now < claims.exp + leeway && claims.nbf.is_none_or(|nbf| nbf <= now + leeway);
            (current && at.elapsed() < VERIFIED_FOR).then(|| claims.clone())
        });
        if let Some(claims) = remembered {
            return Ok(claims);
        }
        let claims: Claims = self.verify_as(token).await?;
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.into(), (claims.clone(), Instant::now()));
        Ok(claims)
    }

    /// Verifies `token` (signature, issuer, audience, times) and reads its claims as `T`: for
    /// tokens of other issuers, such as a Cognito user pool's ID tokens.
    pub async fn verify_as<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        };
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
        let (key, algorithm) = self.key(&kid).await?;
        if algorithm != header.alg {
            return Err(AuthError::Invalid("the algorithm does not match the key".into()));
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let now = chrono::Utc::now().timestamp();
        if data.claims["iat"].as_i64().is_none_or(|iat| iat > now + LEEWAY_SECS as i64) {
            return Err(AuthError::Invalid("the token is issued in the future".into()));
        }
        serde_json::from_value(data.claims).map_err(|e| AuthError::Invalid(format!("unexpected claims: {e}")))
    }

    /// Verifies the bearer token of a request.
    pub async fn verify_headers(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        let token = bearer_token(headers)?;
        self.verify(token).await.map_err(|error| {
            tracing::debug!(%error, "access token refused");
            ApiError::unauthorized("the access token is not valid")
        })
    }
}

/// The bearer token of a request, or a 401 problem when there is none.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("this endpoint needs an access token (Authorization: Bearer …)"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("the Authorization header must be `Bearer <access token>`"));
    }
    Ok(token.trim())
}

/// A signed-in user (any role).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

/// A signed-in admin whose token carries a confirmed second factor.
#[derive(Debug, Clone)]
pub struct AdminUser(pub Claims);

/// A caller who may be signed in: `None` without an `Authorization` header (a guest); a header
/// that does not hold a valid token is refused as [`AuthUser`] refuses it, never taken for a guest.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Claims>);

impl<S> FromRequestParts<S> for MaybeUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(MaybeUser(None));
        }
        let AuthUser(claims) = AuthUser::from_request_parts(parts, state).await?;
        Ok(MaybeUser(Some(claims)))
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        Ok(AuthUser(verifier.verify_headers(&parts.headers).await?))
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(claims) = AuthUser::from_request_parts(parts, state).await?;
        if claims.role != Role::Admin {
            return Err(ApiError::forbidden("this endpoint is for admins"));
        }
        if !claims.has_mfa() {
            return Err(ApiError::forbidden("admin endpoints need a session signed in with a second factor"));
        }
        Ok(AdminUser(claims))
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    struct Issuer {
        kid: String,
        pkcs8: Vec<u8>,
        x: String,
    }

    impl Issuer {
        fn new(kid: &str) -> Self {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref().to_vec();
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            Self { kid: kid.into(), pkcs8, x }
        }

        fn jwks(issuers: &[&Issuer]) -> JwkSet {
            let keys: Vec<_> = issuers
                .iter()
                .map(|i| json!({"kty": "OKP", "crv": "Ed25519", "x": i.x, "kid": i.kid, "use": "sig", "alg": "EdDSA"}))
                .collect();
            serde_json::from_value(json!({ "keys": keys })).unwrap()
        }

        fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&self.pkcs8)).unwrap()
        }
    }

    fn claims(role: &str, amr: &[&str]) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": "u1", "role": role, "iss": "shop", "aud": "shop-api", "iat": now, "exp": now + 600, "amr": amr})
    }

    fn verifier(issuers: &[&Issuer]) -> TokenVerifier {
        let verifier = TokenVerifier::local("shop", "shop-api");
        verifier.set_keys(&Issuer::jwks(issuers));
        verifier
    }

    #[tokio::test]
    async fn a_good_token_verifies() {
        let issuer = Issuer::new("k1");
        let claims = verifier(&[&issuer]).verify(&issuer.sign(&claims("admin", &["pwd", "otp"]))).await.unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, Role::Admin);
        assert!(claims.has_mfa());
    }

    #[tokio::test]
    async fn a_token_without_a_role_is_a_customers() {
        let issuer = Issuer::new("k1");
        let mut c = claims("admin", &["pwd", "otp"]);
        c.as_object_mut().unwrap().remove("role");
        let verified = verifier(&[&issuer]).verify(&issuer.sign(&c)).await.unwrap();
        assert_eq!(verified.role, Role::Customer);
    }

    #[tokio::test]
    async fn expired_early_foreign_and_misaddressed_tokens_are_refused() {
        let issuer = Issuer::new("k1");
        let verifier = verifier(&[&issuer]);
        let now = chrono::Utc::now().timestamp();
        let mut cases = Vec::new();
        let mut c = claims("customer", &["pwd"]);
        c["exp"] = json!(now - 120);
        cases.push(("expired", c));
        let mut c = claims("customer", &["pwd"]);
        c["nbf"] = json!(now + 600);
        cases.push(("not yet valid", c));
        let mut c = claims("customer", &["pwd"]);
        c["iat"] = json!(now + 600);
        cases.push(("issued in the future", c));
        let mut c = claims("customer", &["pwd"]);
        c["iss"] = json!("someone-else");
        cases.push(("wrong issuer", c));
        let mut c = claims("customer", &["pwd"]);
        c["aud"] = json!("another-api");
        cases.push(("wrong audience", c));
        let mut c = claims("customer", &["pwd"]);
        c.as_object_mut().unwrap().remove("exp");
        cases.push(("no expiry", c));
        for (case, claims) in cases {
            assert!(verifier.verify(&issuer.sign(&claims)).await.is_err(), "{case}");
        }
        // Signed by a key the verifier does not know, even under a known kid.
        let stranger = Issuer::new("k1");
        assert!(verifier.verify(&stranger.sign(&claims("customer", &["pwd"]))).await.is_err());
        let unknown = Issuer::new("k9");
        assert!(matches!(
            verifier.verify(&unknown.sign(&claims("customer", &["pwd"]))).await,
            Err(AuthError::UnknownKey)
        ));
    }

    #[tokio::test]
    async fn alg_none_hmac_with_the_public_key_and_tampering_are_refused() {
        let issuer = Issuer::new("k1");
        let verifier = verifier(&[&issuer]);
        let good = issuer.sign(&claims("customer", &["pwd"]));
        let (_, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();

        // alg: none, no signature.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims("admin", &["pwd", "otp"]).to_string());
        assert!(verifier.verify(&format!("{none_header}.{payload}.")).await.is_err());

        // HS256 keyed with the public key's bytes.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(
            &header,
            &claims("admin", &["pwd", "otp"]),
            &EncodingKey::from_secret(issuer.x.as_bytes()),
        )
        .unwrap();
        assert!(verifier.verify(&forged).await.is_err());

        // A payload edited after signing.
        let header = good.split('.').next().unwrap();
        let tampered = format!("{header}.{payload}.{signature}");
        assert!(verifier.verify(&tampered).await.is_err());

        // Garbage.
        for junk in ["", "a.b.c", "not a token"] {
            assert!(verifier.verify(junk).await.is_err(), "{junk}");
        }
    }

    #[tokio::test]
    async fn an_old_key_verifies_until_it_leaves_the_set() {
        let old = Issuer::new("k1");
        let new = Issuer::new("k2");
        let verifier = verifier(&[&old, &new]);
        let token = old.sign(&claims("customer", &["pwd"]));
        assert!(verifier.verify(&token).await.is_ok());
        verifier.set_keys(&Issuer::jwks(&[&new]));
        assert!(verifier.verify(&token).await.is_err());
        assert!(verifier.verify(&new.sign(&claims("customer", &["pwd"]))).await.is_ok());
    }

    #[tokio::test]
    async fn a_remembered_token_still_expires_and_a_tampered_copy_is_not_remembered() {
        let issuer = Issuer::new("k1");
        let verifier = verifier(&[&issuer]);
        // Valid for one more second (its expiry was 29 s ago, within the 30 s leeway).
        let mut c = claims("customer", &["pwd"]);
        c["exp"] = json!(chrono::Utc::now().timestamp() - LEEWAY_SECS as i64 + 1);
        let token = issuer.sign(&c);
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&token).await.is_ok(), "remembered");
        let (head, _) = token.rsplit_once('.').unwrap();
        assert!(verifier.verify(&format!("{head}.AAAA")).await.is_err(), "another signature is another token");
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        assert!(verifier.verify(&token).await.is_err(), "expired while remembered");
    }

    #[tokio::test]
    async fn a_remote_key_set_is_fetched_and_refetched_for_a_new_kid() {
        let first = Issuer::new("k1");
        let second = Issuer::new("k2");
        let served = Arc::new(RwLock::new(Issuer::jwks(&[&first])));
        let fetches = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let app = {
            let served = served.clone();
            let fetches = fetches.clone();
            axum::Router::new().route(
                "/.well-known/jwks.json",
                axum::routing::get(move || {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let set = served.read().unwrap().clone();
                    async move { axum::Json(set) }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let verifier = TokenVerifier::remote("shop", "shop-api", url);
        for _ in 0..3 {
            verifier.verify(&first.sign(&claims("customer", &["pwd"]))).await.unwrap();
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "the set is cached");
        // The issuer rotates; a token under the new kid triggers one more fetch (once the cooldown
        // has passed — simulate that by backdating the last fetch).
        *served.write().unwrap() = Issuer::jwks(&[&first, &second]);
        verifier.keys.write().unwrap().fetched_at = Some(Instant::now() - JWKS_REFETCH_COOLDOWN);
        verifier.verify(&second.sign(&claims("customer", &["pwd"]))).await.unwrap();
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Garbage kids within the cooldown cause no fetch.
        let stranger = Issuer::new("k7");
        assert!(verifier.verify(&stranger.sign(&claims("customer", &["pwd"]))).await.is_err());
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_bearer_token_is_read_and_anything_else_is_a_401() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers).unwrap_err().status(), 401);
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap_err().status(), 401);
        headers.insert(header::AUTHORIZATION, "Bearer  abc.def ".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), "abc.def");
    }
}
