//! The `ObjectStore` suite, for the local folder (with its upload routes) and for S3 (on the moto
//! server).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use chrono::Utc;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use platform::objects::local::{LocalObjectStore, upload_router};
use platform::objects::s3::S3ObjectStore;
use platform::objects::{ObjectError, ObjectStore, PresignedUpload};
use secrecy::SecretString;
use tempfile::TempDir;
use tower::ServiceExt;
use url::Url;

use crate::{moto_endpoint, unique};

/// One adapter under test.
struct ObjectsFixture {
    store: Arc<dyn ObjectStore>,
    /// Where a presigned upload goes.
    uploads: Uploads,
    _dir: Option<TempDir>,
}

enum Uploads {
    /// The routes of the embedded store, called in process.
    Router(Router),
    /// The URL itself, over HTTP.
    Http(reqwest::Client),
}

impl ObjectsFixture {
    /// Sends `body` to a presigned upload URL as a client would, with `content_type`; the status.
    async fn upload(&self, presigned: &PresignedUpload, content_type: &str, body: &'static [u8]) -> StatusCode {
        let method = Method::from_bytes(presigned.method.as_bytes()).unwrap();
        match &self.uploads {
            Uploads::Router(router) => {
                let url = Url::parse(&presigned.url).unwrap();
                let uri = format!("{}?{}", url.path(), url.query().unwrap_or_default());
                let request = Request::builder()
                    .method(method)
                    .uri(uri)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .unwrap();
                router.clone().oneshot(request).await.unwrap().status()
            }
            Uploads::Http(client) => client
                .request(method, &presigned.url)
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap()
                .status(),
        }
    }

    /// The embedded store's routes.
    fn router(&self) -> Router {
        match &self.uploads {
            Uploads::Router(router) => router.clone(),
            Uploads::Http(_) => panic!("not the local store"),
        }
    }
}

async fn open_local() -> Option<ObjectsFixture> {
    let dir = tempfile::tempdir().unwrap();
    let public_url = Url::parse("http://localhost:8080").unwrap();
    let store =
        LocalObjectStore::new(dir.path().join("objects"), &public_url, None, SecretString::from("a signing key"))
            .unwrap();
    let router = upload_router(store.clone());
    Some(ObjectsFixture { store: Arc::new(store), uploads: Uploads::Router(router), _dir: Some(dir) })
}

async fn open_s3() -> Option<ObjectsFixture> {
    let endpoint = moto_endpoint()?;
    // The adapter takes its credentials from the environment, as on AWS.
    platform::testing::server_env("AWS_ACCESS_KEY_ID")?;
    platform::testing::server_env("AWS_SECRET_ACCESS_KEY")?;
    let bucket = unique("conformance-");
    let client = reqwest::Client::new();
    let endpoint_url = Url::parse(&endpoint).unwrap();
    platform::objects::s3::create_bucket_on_emulator(&endpoint_url, &bucket).await.unwrap();
    let store = S3ObjectStore::new(&bucket, "us-east-1", Some(&Url::parse(&endpoint).unwrap()), None).unwrap();
    Some(ObjectsFixture { store: Arc::new(store), uploads: Uploads::Http(client), _dir: None })
}

macro_rules! objects_suite {
    ($adapter:ident, $fixture:ident $(, $extra:ident)* $(,)?) => {
        mod $adapter {
            use super::*;

            instantiate!($fixture:
                a_stored_object_comes_back_with_its_bytes_and_content_type,
                a_missing_key_is_none,
                delete_removes_an_object_and_is_idempotent,
                keys_that_could_escape_the_store_are_rejected,
                a_presigned_upload_url_accepts_the_upload,
                a_public_url_ends_with_the_key,
                the_store_answers_a_ping,
                $($extra),*
            );
        }
    };
}

objects_suite!(
    local,
    open_local,
    an_upload_with_a_tampered_signature_is_forbidden,
    an_upload_of_another_content_type_is_refused,
    an_uploaded_file_is_served_at_its_public_url,
);
objects_suite!(s3, open_s3, anyone_reads_an_image_at_its_public_url_and_no_one_a_label);

/// Every byte value, so no encoding can get in the way.
const BYTES: &[u8] = &{
    let mut bytes = [0u8; 512];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = (i % 256) as u8;
        i += 1;
    }
    bytes
};

// ---- the suite --------------------------------------------------------------------------------

async fn a_stored_object_comes_back_with_its_bytes_and_content_type(fx: &ObjectsFixture) {
    let key = "products/p-1/image-1.png";
    fx.store.put(key, Bytes::from_static(BYTES), "image/png").await.unwrap();
    let object = fx.store.get(key).await.unwrap().expect("the object");
    assert_eq!(object.bytes, BYTES);
    assert_eq!(object.content_type.as_deref(), Some("image/png"));

    fx.store.put(key, Bytes::from_static(b"replaced"), "image/png").await.unwrap();
    assert_eq!(fx.store.get(key).await.unwrap().unwrap().bytes, &b"replaced"[..], "a put replaces");
}

async fn a_missing_key_is_none(fx: &ObjectsFixture) {
    assert!(fx.store.get("products/nothing-here.png").await.unwrap().is_none());
    assert!(fx.store.get("nothing/here/at/all.pdf").await.unwrap().is_none());
}

async fn delete_removes_an_object_and_is_idempotent(fx: &ObjectsFixture) {
    let key = "labels/2026/o_1.pdf";
    fx.store.put(key, Bytes::from_static(b"%PDF-1.7"), "application/pdf").await.unwrap();
    fx.store.delete(key).await.unwrap();
    assert!(fx.store.get(key).await.unwrap().is_none());
    fx.store.delete(key).await.unwrap();
    fx.store.delete("labels/never/there.pdf").await.unwrap();
}

async fn keys_that_could_escape_the_store_are_rejected(fx: &ObjectsFixture) {
    let invalid = |result: Result<(), ObjectError>, key: &str| {
        assert!(matches!(result, Err(ObjectError::InvalidKey(_))), "{key:?}: {result:?}");
    };
    for key in ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a/", "", "a b", "a\\..\\b"] {
        invalid(fx.store.put(key, Bytes::from_static(b"x"), "text/plain").await, key);
        invalid(fx.store.get(key).await.map(drop), key);
        invalid(fx.store.delete(key).await, key);
        invalid(fx.store.presign_upload(key, "text/plain", Duration::from_secs(60)).await.map(drop), key);
    }
}

async fn a_presigned_upload_url_accepts_the_upload(fx: &ObjectsFixture) {
    let key = format!("uploads/{}/photo.png", unique("u-"));
    let presigned = fx.store.presign_upload(&key, "image/png", Duration::from_secs(300)).await.unwrap();
    assert_eq!(presigned.method, "PUT");
    assert_eq!(presigned.headers.get("content-type").map(String::as_str), Some("image/png"));
    let expires_in = presigned.expires_at - Utc::now();
    assert!(expires_in > chrono::Duration::seconds(290) && expires_in <= chrono::Duration::seconds(300));
    assert_eq!(presigned.public_url, fx.store.public_url(&key).as_str());

    let status = fx.upload(&presigned, "image/png", BYTES).await;
    assert!(status.is_success(), "the upload got {status}");
    let object = fx.store.get(&key).await.unwrap().expect("the uploaded object");
    assert_eq!(object.bytes, BYTES);
    assert_eq!(object.content_type.as_deref(), Some("image/png"));
}

async fn a_public_url_ends_with_the_key(fx: &ObjectsFixture) {
    let key = "products/p-1/image-1.png";
    let url = fx.store.public_url(key);
    assert!(url.as_str().ends_with(&format!("/{key}")), "{url}");
}

async fn the_store_answers_a_ping(fx: &ObjectsFixture) {
    fx.store.ping().await.unwrap();
}

// ---- the local store alone --------------------------------------------------------------------

async fn an_upload_with_a_tampered_signature_is_forbidden(fx: &ObjectsFixture) {
    let key = "uploads/u-1/photo.png";
    let mut presigned = fx.store.presign_upload(key, "image/png", Duration::from_secs(300)).await.unwrap();
    let mut url = Url::parse(&presigned.url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| {
            let value = match name.as_ref() {
                // Flip the first hex digit of the signature.
                "signature" => {
                    let flipped = if value.starts_with('0') { '1' } else { '0' };
                    format!("{flipped}{}", &value[1..])
                }
                _ => value.into_owned(),
            };
            (name.into_owned(), value)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    presigned.url = url.into();
    assert_eq!(fx.upload(&presigned, "image/png", BYTES).await, StatusCode::FORBIDDEN);

    // Nor may the signed URL be bent to another key.
    let mut elsewhere = fx.store.presign_upload(key, "image/png", Duration::from_secs(300)).await.unwrap();
    elsewhere.url = elsewhere.url.replace("/uploads/u-1/", "/uploads/u-2/");
    assert_eq!(fx.upload(&elsewhere, "image/png", BYTES).await, StatusCode::FORBIDDEN);

    assert!(fx.store.get(key).await.unwrap().is_none());
    assert!(fx.store.get("uploads/u-2/photo.png").await.unwrap().is_none());
}

async fn an_upload_of_another_content_type_is_refused(fx: &ObjectsFixture) {
    let key = "uploads/u-1/photo.png";
    let presigned = fx.store.presign_upload(key, "image/png", Duration::from_secs(300)).await.unwrap();
    assert_eq!(fx.upload(&presigned, "text/html", b"<script>".as_slice()).await, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(fx.store.get(key).await.unwrap().is_none());
}

async fn an_uploaded_file_is_served_at_its_public_url(fx: &ObjectsFixture) {
    let key = "images/u-1/photo.png";
    let presigned = fx.store.presign_upload(key, "image/png", Duration::from_secs(300)).await.unwrap();
    assert!(fx.upload(&presigned, "image/png", BYTES).await.is_success());

    let path = Url::parse(&presigned.public_url).unwrap().path().to_owned();
    assert_eq!(path, format!("/files/{key}"));
    let response = fx.router().oneshot(Request::builder().uri(&path).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "image/png");
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), BYTES);

    let missing =
        fx.router().oneshot(Request::builder().uri("/files/images/none.png").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.unwrap().status(), StatusCode::NOT_FOUND);

    // Only public prefixes are served: a shipping label (names, addresses) is not, whoever asks.
    fx.store.put("labels/ord_1.pdf", Bytes::from_static(b"%PDF label"), "application/pdf").await.unwrap();
    for path in ["/files/labels/ord_1.pdf", "/files/images/../labels/ord_1.pdf", "/files/uploads/u-1/photo.png"] {
        let response = fx.router().oneshot(Request::builder().uri(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

async fn anyone_reads_an_image_at_its_public_url_and_no_one_a_label(fx: &ObjectsFixture) {
    let key = "images/u-1/photo.png";
    let presigned = fx.store.presign_upload(key, "image/png", Duration::from_secs(300)).await.unwrap();
    assert!(fx.upload(&presigned, "image/png", BYTES).await.is_success());
    let anonymous = reqwest::Client::new();
    let served = anonymous.get(&presigned.public_url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), BYTES);

    // A shipping label (names, addresses) is read only through routes that check who asks.
    fx.store.put("labels/ord_1.pdf", Bytes::from_static(b"%PDF label"), "application/pdf").await.unwrap();
    let label = fx.store.public_url("labels/ord_1.pdf");
    assert_eq!(anonymous.get(label.as_str()).send().await.unwrap().status(), StatusCode::FORBIDDEN);
}
