//! The object store port (product images, shipping labels): a local folder in the embedded mode, S3
//! on AWS, both through the `object_store` crate. Clients upload straight to the store with a
//! presigned URL: S3 presigning on AWS, a signed, expiring URL to this process in the embedded mode
//! ([`local::upload_router`]).

pub mod local;
pub mod s3;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

/// A failure of the object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The key is not a safe object path.
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// The store failed.
    #[error("object store")]
    Store(#[from] object_store::Error),
    /// The store could not be set up.
    #[error("object store configuration: {0}")]
    Config(String),
}

/// A stored object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The content.
    pub bytes: Bytes,
    /// Its media type, where the store keeps it.
    pub content_type: Option<String>,
}

/// Where and how a client uploads one object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PresignedUpload {
    /// The URL to send the bytes to.
    pub url: String,
    /// The HTTP method to use (`PUT`).
    pub method: String,
    /// Headers the upload must carry.
    pub headers: std::collections::BTreeMap<String, String>,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
    /// Where the object will be served from once uploaded.
    pub public_url: String,
}

/// The object store port.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), ObjectError>;
    /// The object under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError>;
    /// The size in bytes of the object under `key`, if any, without reading it.
    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError>;
    /// Deletes `key` (no error when absent).
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;
    /// A URL a client can `PUT` the object to until `expires_in` has passed.
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, ObjectError>;
    /// Where the object is served publicly (the CDN on AWS).
    fn public_url(&self, key: &str) -> Url;
    /// Whether the store answers (for `/ready`).
    async fn ping(&self) -> Result<(), ObjectError>;
}

/// The key prefixes anyone may read (the CDN's `/images/*` on AWS, `GET /files/…` embedded);
/// everything else (shipping labels: names and addresses) is read only through routes that check
/// who asks.
pub const PUBLIC_PREFIXES: &[&str] = &["images/"];

/// Whether `key` may be served to anyone.
pub fn is_public(key: &str) -> bool {
    PUBLIC_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) && !key.split('/').any(|part| part == "..")
}

/// Checks that `key` is a relative path of safe segments (no `..`, no empty segment, no control
/// characters), so it cannot escape the store.
pub fn validate_key(key: &str) -> Result<object_store::path::Path, ObjectError> {
    let invalid = || ObjectError::InvalidKey(key.to_owned());
    if key.is_empty() || key.len() > 512 || key.starts_with('/') || key.ends_with('/') {
        return Err(invalid());
    }
    for segment in key.split('/') {
        let safe = !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !safe {
            return Err(invalid());
        }
    }
    object_store::path::Path::parse(key).map_err(|_| invalid())
}

/// Reads `key` from an `object_store` backend: its bytes and stored content type, `None` when absent.
async fn read(store: &dyn object_store::ObjectStore, key: &str) -> Result<Option<Object>, ObjectError> {
    use object_store::ObjectStoreExt;
    let path = validate_key(key)?;
    match store.get(&path).await {
        Ok(result) => {
            let content_type = result.attributes.get(&object_store::Attribute::ContentType).map(|v| v.to_string());
            Ok(Some(Object { bytes: result.bytes().await?, content_type }))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The size of `key` in an `object_store` backend, `None` when absent.
async fn size_of(store: &dyn object_store::ObjectStore, key: &str) -> Result<Option<u64>, ObjectError> {
    use object_store::ObjectStoreExt;
    let path = validate_key(key)?;
    match store.head(&path).await {
        Ok(meta) => Ok(Some(meta.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The image type `bytes` hold, by their signature: `image/jpeg`, `image/png`, `image/gif`,
/// `image/webp` or `image/avif`; `None` for anything else (HTML, scripts, SVG, archives). What an
/// uploaded image must be before it is published under its declared type.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && matches!(&bytes[8..12], b"avif" | b"avis") {
        Some("image/avif")
    } else {
        None
    }
}

/// Deletes `key` from an `object_store` backend; absent is fine.
async fn remove(store: &dyn object_store::ObjectStore, key: &str) -> Result<(), ObjectError> {
    use object_store::ObjectStoreExt;
    let path = validate_key(key)?;
    match store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn join(base: &Url, key: &str) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(key).expect("a validated key joins onto a base URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_store() {
        for bad in ["", "/etc/passwd", "a/../b", "../a", "a//b", "a/", "a b", "a/./b", "a\\b", "ä"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "products/p1/image-1.jpg", "labels/2026/o_1.pdf"] {
            assert!(validate_key(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn images_are_known_by_their_bytes_and_nothing_else_passes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a\x01\x00"), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"\0\0\0\x1cftypavif\0\0\0\0"), Some("image/avif"));
        for bad in [&b"<html><script>alert(1)</script>"[..], b"<svg xmlns=", b"\x89PNG", b"PK\x03\x04", b""] {
            assert_eq!(sniff_image(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn public_urls_join_onto_the_base() {
        let base = Url::parse("https://cdn.example/images").unwrap();
        assert_eq!(join(&base, "p/1.jpg").as_str(), "https://cdn.example/images/p/1.jpg");
    }
}
