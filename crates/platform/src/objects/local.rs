//! The embedded object store: a folder under the data dir. Uploads go to this process through a URL
//! signed with HMAC-SHA256 over the key, content type and expiry; [`upload_router`] checks the
//! signature, the content type and the size, and [`upload_router`] also serves stored files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes as BodyBytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac};
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use url::Url;

use super::{Object, ObjectError, ObjectStore, PresignedUpload, join, read, remove, validate_key};
use crate::http::ApiError;

/// Largest object accepted through a local upload URL.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// Objects in a local folder.
#[derive(Clone)]
pub struct LocalObjectStore {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
    public_base: Url,
    upload_base: Url,
    signing_key: SecretString,
}

impl std::fmt::Debug for LocalObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjectStore").field("root", &self.root).finish()
    }
}

impl LocalObjectStore {
    /// A store in `root`, serving files under `{public_url}/files/` (or `cdn_base`) and taking
    /// uploads at `{public_url}/uploads/`, signed with `signing_key`.
    pub fn new(
        root: impl Into<PathBuf>,
        public_url: &Url,
        cdn_base: Option<&Url>,
        signing_key: SecretString,
    ) -> Result<Self, ObjectError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| ObjectError::Config(format!("{}: {e}", root.display())))?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self {
            root,
            store: Arc::new(store),
            public_base: cdn_base.cloned().unwrap_or_else(|| join(public_url, "files/")),
            upload_base: join(public_url, "uploads/"),
            signing_key,
        })
    }

    fn signature(&self, key: &str, content_type: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("PUT\n{key}\n{content_type}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, key: &str, content_type: &str, expires: i64, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("PUT\n{key}\n{content_type}\n{expires}").as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&given).is_ok()
    }
}

fn content_type_for(key: &str) -> Option<&'static str> {
    let extension = key.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "avif" => "image/avif",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, key: &str, bytes: Bytes, _content_type: &str) -> Result<(), ObjectError> {
        let path = validate_key(key)?;
        self.store.put(&path, bytes.into()).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        // Files keep no attributes: the content type follows from the extension.
        let object = read(self.store.as_ref(), key).await?;
        Ok(object.map(|o| Object { content_type: content_type_for(key).map(str::to_owned), ..o }))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        super::size_of(self.store.as_ref(), key).await
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        remove(self.store.as_ref(), key).await
    }

    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, ObjectError> {
        validate_key(key)?;
        let expires_at = Utc::now() + expires_in;
        let expires = expires_at.timestamp();
        let mut url = join(&self.upload_base, key);
        url.query_pairs_mut()
            .append_pair("content_type", content_type)
            .append_pair("expires", &expires.to_string())
            .append_pair("signature", &self.signature(key, content_type, expires));
        Ok(PresignedUpload {
            url: url.into(),
            method: "PUT".into(),
            headers: [("content-type".to_owned(), content_type.to_owned())].into(),
            expires_at,
            public_url: self.public_url(key).into(),
        })
    }

    fn public_url(&self, key: &str) -> Url {
        join(&self.public_base, key)
    }

    async fn ping(&self) -> Result<(), ObjectError> {
        tokio::fs::metadata(&self.root).await.map(drop).map_err(|e| ObjectError::Config(e.to_string()))
    }
}

#[derive(Deserialize)]
struct UploadQuery {
    content_type: String,
    expires: i64,
    signature: String,
}

async fn upload(
    State(store): State<LocalObjectStore>,
    Path(key): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: BodyBytes,
) -> Result<StatusCode, ApiError> {
    if !store.verify(&key, &query.content_type, query.expires, &query.signature) {
        return Err(ApiError::forbidden("the upload URL's signature is not valid"));
    }
    if Utc::now().timestamp() > query.expires {
        return Err(ApiError::forbidden("the upload URL has expired"));
    }
    let sent = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if sent != query.content_type {
        return Err(ApiError::unsupported_media_type(format!("this URL takes {} only", query.content_type)));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    store.put(&key, body, &query.content_type).await.map_err(|e| match e {
        ObjectError::InvalidKey(_) => ApiError::bad_request("invalid object key"),
        other => ApiError::internal(other),
    })?;
    Ok(StatusCode::CREATED)
}

async fn download(State(store): State<LocalObjectStore>, Path(key): Path<String>) -> Result<Response, ApiError> {
    // Only what the CDN would serve on AWS: labels and anything else private are never public.
    if !super::is_public(&key) {
        return Err(ApiError::not_found("no such file"));
    }
    let object = store.get(&key).await.map_err(|e| match e {
        ObjectError::InvalidKey(_) => ApiError::not_found("no such file"),
        other => ApiError::internal(other),
    })?;
    let object = object.ok_or_else(|| ApiError::not_found("no such file"))?;
    let content_type = object.content_type.unwrap_or_else(|| "application/octet-stream".into());
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable".into()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        ],
        object.bytes,
    )
        .into_response())
}

/// The routes of the embedded store: `PUT /uploads/{key}` (signed) and `GET /files/{key}` (public
/// prefixes only, as the CDN serves on AWS).
pub fn upload_router(store: LocalObjectStore) -> Router {
    Router::new()
        .route("/uploads/{*key}", put(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/files/{*key}", get(download))
        .with_state(store)
}
