//! The access-token signing keys: Ed25519 key pairs, the newest signing, each published in the JWK
//! set under its `kid` so a token signed before a rotation still verifies until the key is retired.
//!
//! They come from `SHOP_JWT_PRIVATE_KEYS` when it is set (Secrets Manager, for rotation by hand).
//! Otherwise, with PostgreSQL (the local stack, AWS), they are kept in the service's database,
//! shared by all its tasks, the first task to start making the first key; in the embedded mode
//! they are made on first start and kept under `{data_dir}/secrets/jwt/`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::Claims;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

/// Keys kept published in the embedded key folder: the signing one and the one before it.
const PUBLISHED_KEYS: usize = 2;

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
    /// The key refresh-token successors are derived with (from the private key, never published).
    successors: aws_lc_rs::hmac::Key,
    /// The key secrets sealed for this service's own consumers are encrypted with (AES-256-GCM).
    sealing: aws_lc_rs::aead::LessSafeKey,
}

/// A key of `purpose` derived from a private key.
fn derived(purpose: &str, pkcs8: &[u8]) -> [u8; 32] {
    let mut derivation = Sha256::new();
    derivation.update(purpose.as_bytes());
    derivation.update(b"\n");
    derivation.update(pkcs8);
    derivation.finalize().into()
}

impl SigningKey {
    fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        // The kid is a thumbprint of the public key: stable across restarts and processes.
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..12]);
        let successors = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &derived("shop refresh-token successors v1", pkcs8),
        );
        let sealing =
            aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &derived("shop sealed v1", pkcs8))
                .map(aws_lc_rs::aead::LessSafeKey::new)
                .map_err(|_| anyhow::anyhow!("cannot make a sealing key"))?;
        Ok(Self { kid, encoding: EncodingKey::from_ed_der(pkcs8), public, successors, sealing })
    }
}

/// The signing keys of the user service.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// The public keys, made once: every verifier and `GET /.well-known/jwks.json` serve it.
    jwks: JwkSet,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>()).finish()
    }
}

/// A new Ed25519 key as PKCS#8 DER.
pub fn generate_pkcs8() -> Vec<u8> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("the system RNG works").as_ref().to_vec()
}

impl KeyRing {
    /// The keys a configuration names: `SHOP_JWT_PRIVATE_KEYS`, or the embedded key folder (made,
    /// with a first key, when missing).
    pub fn load(keys: Option<&secrecy::SecretString>, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match keys {
            Some(keys) => Self::from_base64_list(keys.expose_secret()).context("SHOP_JWT_PRIVATE_KEYS"),
            None => Self::from_dir(&data_dir.join("secrets/jwt")),
        }
    }

    /// The keys in the service's PostgreSQL database (a first key is made when there is none, once
    /// however many tasks start together), oldest first.
    pub async fn from_postgres(pool: &sqlx::PgPool) -> anyhow::Result<Self> {
        // A fixed id: tasks starting together all try the same first key, and one insert wins.
        sqlx::query(
            "INSERT INTO signing_keys (id, pkcs8, created_at) VALUES ('initial', $1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(STANDARD.encode(generate_pkcs8()))
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(pool)
        .await
        .context("cannot make the first signing key")?;
        let stored: Vec<String> = sqlx::query_scalar("SELECT pkcs8 FROM signing_keys ORDER BY created_at, id")
            .fetch_all(pool)
            .await
            .context("cannot read the signing keys")?;
        let keys = stored[stored.len().saturating_sub(PUBLISHED_KEYS)..]
            .iter()
            .map(|encoded| SigningKey::from_pkcs8(&STANDARD.decode(encoded).context("not base64")?))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("a stored signing key")?;
        Ok(Self::new(keys))
    }

    /// Keys from comma-separated base64 PKCS#8; the last one signs.
    pub fn from_base64_list(list: &str) -> anyhow::Result<Self> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|encoded| SigningKey::from_pkcs8(&STANDARD.decode(encoded).context("not base64")?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!keys.is_empty(), "no key given");
        Ok(Self::new(keys))
    }

    /// Keys from a folder of `*.key` files (base64 PKCS#8), oldest first by name; a first key is made
    /// when there is none.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        if key_files(dir)?.is_empty() {
            Self::rotate_dir(dir)?;
        }
        let files = key_files(dir)?;
        let keys = files[files.len().saturating_sub(PUBLISHED_KEYS)..]
            .iter()
            .map(|path| {
                let encoded =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                SigningKey::from_pkcs8(&STANDARD.decode(encoded.trim()).context("not base64")?)
                    .with_context(|| path.display().to_string())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self::new(keys))
    }

    fn new(keys: Vec<SigningKey>) -> Self {
        let jwks: Vec<serde_json::Value> = keys
            .iter()
            .map(|key| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                    "kid": key.kid, "x": URL_SAFE_NO_PAD.encode(&key.public),
                })
            })
            .collect();
        let jwks = serde_json::from_value(serde_json::json!({ "keys": jwks })).expect("a JWK set of OKP keys");
        Self { keys, jwks }
    }

    /// The refresh token that succeeds `presented`: derived from it with a secret only this
    /// service holds, so two tabs (or a retry) refreshing with one token get the same successor,
    /// and nobody holding a spent token can work out its successor.
    pub fn successor(&self, presented: &str) -> String {
        let key = &self.keys.last().expect("a key ring has a key").successors;
        let tag = aws_lc_rs::hmac::sign(key, presented.as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// `secret` encrypted for this service's own consumers (a reset token on its way to the mailer
    /// through the event store and queues, where it must not be readable): `v1.` and base64 of a
    /// random nonce and the AES-256-GCM ciphertext, under the newest key.
    pub fn seal(&self, secret: &str) -> String {
        let key = &self.keys.last().expect("a key ring has a key").sealing;
        let mut nonce = [0u8; aws_lc_rs::aead::NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system RNG works");
        let mut sealed = secret.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::empty(),
            &mut sealed,
        )
        .expect("sealing a short secret works");
        format!("v1.{}", URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// What [`seal`](Self::seal) sealed, under any key of the ring; `None` if it was not sealed
    /// by this service (or was tampered with).
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix("v1.")?).ok()?;
        if bytes.len() < aws_lc_rs::aead::NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(aws_lc_rs::aead::NONCE_LEN);
        self.keys.iter().rev().find_map(|key| {
            let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut buffer = ciphertext.to_vec();
            let plain = key.sealing.open_in_place(nonce, aws_lc_rs::aead::Aad::empty(), &mut buffer).ok()?;
            String::from_utf8(plain.to_vec()).ok()
        })
    }

    /// Adds a new signing key to the folder. The previous one stays published; older ones retire.
    pub fn rotate_dir(dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let name = format!("{:020}.key", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
        let path = dir.join(name);
        write_private(&path, &STANDARD.encode(generate_pkcs8()))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The `kid` of the signing key.
    pub fn current_kid(&self) -> &str {
        &self.keys.last().expect("a key ring has a key").kid
    }

    /// The public keys as a JWK set.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an access token with the newest key.
    pub fn sign(&self, claims: &Claims) -> String {
        let key = self.keys.last().expect("a key ring has a key");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("claims serialize and Ed25519 signs")
    }
}

fn key_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "key"))
            .collect::<Vec<_>>(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", dir.display())),
    };
    files.sort();
    Ok(files)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use platform::auth::{Role, TokenVerifier};

    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_ring_only_and_after_a_rotation() {
        let old = STANDARD.encode(generate_pkcs8());
        let ring = KeyRing::from_base64_list(&old).unwrap();
        let sealed = ring.seal("reset-token-123");
        assert!(sealed.starts_with("v1.") && !sealed.contains("reset-token-123"));
        assert_ne!(ring.seal("reset-token-123"), sealed, "a fresh nonce each time");
        assert_eq!(ring.open(&sealed).as_deref(), Some("reset-token-123"));
        let rotated = KeyRing::from_base64_list(&format!("{old},{}", STANDARD.encode(generate_pkcs8()))).unwrap();
        assert_eq!(rotated.open(&sealed).as_deref(), Some("reset-token-123"), "the older key still opens it");
        let stranger = KeyRing::from_base64_list(&STANDARD.encode(generate_pkcs8())).unwrap();
        assert_eq!(stranger.open(&sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(ring.open(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(ring.open("v1.!!"), None);
        assert_eq!(ring.open("plain"), None);
        // Refresh successors: the same token, the same successor; another token, another.
        assert_eq!(ring.successor("t1"), ring.successor("t1"));
        assert_ne!(ring.successor("t1"), ring.successor("t2"));
        assert_ne!(ring.successor("t1"), stranger.successor("t1"));
    }

    fn claims() -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "u1".into(),
            role: Role::Customer,
            iss: "shop".into(),
            aud: "shop-api".into(),
            iat: now,
            nbf: None,
            exp: now + 60,
            amr: vec!["pwd".into()],
            sid: None,
        }
    }

    #[tokio::test]
    async fn a_rotation_keeps_old_tokens_valid_until_their_key_retires() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::from_dir(dir.path()).unwrap();
        let again = KeyRing::from_dir(dir.path()).unwrap();
        assert_eq!(first.current_kid(), again.current_kid(), "the key is kept across restarts");
        let old_token = first.sign(&claims());

        KeyRing::rotate_dir(dir.path()).unwrap();
        let second = KeyRing::from_dir(dir.path()).unwrap();
        assert_ne!(second.current_kid(), first.current_kid());
        assert_eq!(second.jwks().keys.len(), 2);
        let verifier = TokenVerifier::local("shop", "shop-api");
        verifier.set_keys(second.jwks());
        assert!(verifier.verify(&old_token).await.is_ok(), "the previous key still verifies");
        assert!(verifier.verify(&second.sign(&claims())).await.is_ok());

        KeyRing::rotate_dir(dir.path()).unwrap();
        let third = KeyRing::from_dir(dir.path()).unwrap();
        verifier.set_keys(third.jwks());
        assert!(verifier.verify(&old_token).await.is_err(), "a retired key no longer verifies");
    }

    #[test]
    fn keys_from_the_environment_sign_with_the_last() {
        let a = STANDARD.encode(generate_pkcs8());
        let b = STANDARD.encode(generate_pkcs8());
        let ring = KeyRing::from_base64_list(&format!("{a}, {b}")).unwrap();
        let only_b = KeyRing::from_base64_list(&b).unwrap();
        assert_eq!(ring.current_kid(), only_b.current_kid());
        assert!(KeyRing::from_base64_list("not-base64!").is_err());
        assert!(KeyRing::from_base64_list("").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn tasks_starting_together_share_one_key_kept_in_the_database() {
        let Some(schema) = platform::testing::PgSchema::create().await else { return };
        platform::postgres::migrate(&schema.pool, crate::store::postgres::PG_MIGRATIONS).await.unwrap();
        let rings = futures::future::join_all((0..4).map(|_| KeyRing::from_postgres(&schema.pool))).await;
        let kids: Vec<String> = rings.into_iter().map(|ring| ring.unwrap().current_kid().to_owned()).collect();
        assert!(kids.iter().all(|kid| *kid == kids[0]), "{kids:?}");
        let again = KeyRing::from_postgres(&schema.pool).await.unwrap();
        assert_eq!(again.current_kid(), kids[0], "a restart finds the same key");
        assert_eq!(again.jwks().keys.len(), 1);
        schema.drop().await;
    }
}
