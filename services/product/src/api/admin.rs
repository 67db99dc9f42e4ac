//! Admin catalog tools: `POST /admin/v1/products/import` (NDJSON bulk import),
//! `POST /admin/v1/products/{id}/images` (a presigned upload URL for a product image) and
//! `POST /admin/v1/products/{id}/images/{upload}` (the upload checked and published).
//!
//! An image is uploaded to `uploads/…`, which nothing serves, and becomes public only once this
//! service has read it back: no larger than the limit, and by its bytes an image of the type it was
//! declared as. Only then is it stored under `images/…` (the CDN's prefix) with that type and
//! listed on the product, so the shop's domain never serves an uploaded page or script.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use futures::TryStreamExt;
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Path, Validator};
use platform::objects::PresignedUpload;
use platform::telemetry::trace::TraceContext;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::app::images::TYPES;
use crate::app::import::{ImportError, ImportReport, import_ndjson};

/// How long an upload URL works.
const UPLOAD_EXPIRY: Duration = Duration::from_secs(15 * 60);

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Imports products from NDJSON, one product a line.
#[utoipa::path(post, path = "/admin/v1/products/import", tag = "catalog", security(("bearer" = [])),
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One product a line, as for POST /admin/v1/products, optionally with `id` (create or replace under it) and `images`"),
    responses(
        (status = 200, description = "What was imported and which lines failed, with why", body = ImportReport),
        (status = 413, description = "The upload is too large", content_type = "application/problem+json"),
        (status = 415, description = "Not application/x-ndjson", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %admin.sub))]
pub async fn import_products(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    if !ndjson {
        return Err(ApiError::unsupported_media_type("send the products as application/x-ndjson"));
    }
    // This route takes more than the platform's body limit: it sets its own, the bulk limit.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.bulk_body_limit as u64) {
        return Err(ApiError::payload_too_large(state.bulk_body_limit));
    }
    let body = Body::new(http_body_util::Limited::new(body, state.bulk_body_limit));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(stream));
    let imported = import_ndjson(&state.catalog, reader, |_| {}).await;
    // Imported lines may replace cached products: start the page cache afresh.
    state.pages.clear();
    match imported {
        Ok(report) => Ok(Json(report)),
        Err(ImportError::Read(error)) if is_length_limit(&error) => {
            Err(ApiError::payload_too_large(state.bulk_body_limit))
        }
        Err(ImportError::Read(error)) => Err(ApiError::bad_request(format!("could not read the upload: {error}"))),
        // A throttled or busy store is a 503 with `Retry-After`, never a 500 (lines with an `id`
        // are written again as they are; lines without one get a new product each time).
        Err(ImportError::Store(error)) => Err(error.into()),
    }
}

/// The image an admin is about to upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    /// Its media type: image/jpeg, image/png, image/webp or image/gif (each decoded and written
    /// again before it is published).
    pub content_type: String,
    /// Its size in bytes (at most the configured cap, 10 MiB by default).
    pub size: u64,
}

/// Where to upload the image, how to publish it, and where it will be served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImageUpload {
    /// How to upload: `PUT` the bytes to `upload.url` with `upload.headers` before `upload.expires_at`.
    pub upload: PresignedUpload,
    /// Once uploaded, `POST` here (no body) to have the image checked and published.
    pub complete: String,
    /// The image's public URL (under the CDN) once published.
    pub url: String,
}

/// A published image.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishedImage {
    /// Its public URL, now listed among the product's images.
    pub url: String,
    /// The product's images.
    pub images: Vec<String>,
}

/// Prepares the upload of a product image.
#[utoipa::path(post, path = "/admin/v1/products/{id}/images", tag = "catalog", request_body = ImageRequest,
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The product id")),
    responses(
        (status = 201, description = "A presigned upload URL and the image's public URL", body = ImageUpload),
        (status = 404, description = "No such product", content_type = "application/problem+json"),
        (status = 422, description = "Not an image type, too large, or the product has too many images", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(product.id = %id, user.id = %admin.sub))]
pub async fn create_image(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(request): Json<ImageRequest>,
) -> Result<(axum::http::StatusCode, Json<ImageUpload>), ApiError> {
    let mut v = Validator::new();
    let content_type = request.content_type.trim().to_ascii_lowercase();
    let extension = TYPES.iter().find(|(t, _, _)| *t == content_type).map(|(_, e, _)| *e);
    v.check(extension.is_some(), "content_type", "must be image/jpeg, image/png, image/webp or image/gif");
    v.check(request.size > 0, "size", "must be greater than 0");
    v.check(
        request.size <= state.image_max_bytes,
        "size",
        format!("must be at most {} bytes", state.image_max_bytes).as_str(),
    );
    v.finish()?;
    let product = state.catalog.products.get(&id).await?.ok_or_else(|| ApiError::not_found("no such product"))?;
    if product.images.len() >= crate::domain::product::MAX_IMAGES {
        return Err(ApiError::invalid_field("images", "a product has at most 20 images"));
    }
    // The name carries the declared size: the upload may not be larger.
    let name = format!("{}-{}.{}", uuid::Uuid::now_v7().simple(), request.size, extension.expect("validated"));
    // Under `uploads/`, which nothing serves: published under `images/` once checked.
    let mut upload = state.objects.presign_upload(&staged_key(&id, &name), &content_type, UPLOAD_EXPIRY).await?;
    let url = state.objects.public_url(&image_key(&id, &name)).to_string();
    upload.public_url = url.clone();
    let complete = format!("/admin/v1/products/{id}/images/{name}");
    Ok((axum::http::StatusCode::CREATED, Json(ImageUpload { upload, complete, url })))
}

fn staged_key(product: &str, name: &str) -> String {
    format!("uploads/products/{product}/{name}")
}

fn image_key(product: &str, name: &str) -> String {
    format!("images/products/{product}/{name}")
}

/// The declared type and size of an upload name (`{32 hex}-{size}.{extension}`), `None` for any
/// other name.
fn declared(name: &str) -> Option<(&'static str, u64)> {
    let (stem, extension) = name.split_once('.')?;
    let (id, size) = stem.split_once('-')?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let kind = TYPES.iter().find(|(_, e, _)| *e == extension).map(|(t, _, _)| *t)?;
    Some((kind, size.parse().ok()?))
}

/// Checks an uploaded image and publishes it.
#[utoipa::path(post, path = "/admin/v1/products/{id}/images/{upload}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The product id"),
        ("upload" = String, Path, description = "The upload's name, from `complete` of the upload URL's answer")),
    responses(
        (status = 200, description = "The image, decoded and written again by the service, is public and listed on the product", body = PublishedImage),
        (status = 404, description = "No such product, or nothing was uploaded", content_type = "application/problem+json"),
        (status = 413, description = "The upload is larger than an image may be (it is deleted)", content_type = "application/problem+json"),
        (status = 422, description = "The upload is not a whole image of its declared type, or over 10,000 pixels a side (it is deleted), or the product has too many images", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(product.id = %id, user.id = %admin.sub))]
pub async fn complete_image(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    trace: TraceContext,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<PublishedImage>, ApiError> {
    let (declared, declared_size) = declared(&name).ok_or_else(|| ApiError::not_found("no such upload"))?;
    let mut product = state.catalog.products.get(&id).await?.ok_or_else(|| ApiError::not_found("no such product"))?;
    let url = state.objects.public_url(&image_key(&id, &name)).to_string();
    let staged = staged_key(&id, &name);
    let Some(size) = state.objects.size(&staged).await? else {
        // Published already (a retried request), or never uploaded.
        if product.images.contains(&url) {
            return Ok(Json(PublishedImage { url, images: product.images }));
        }
        return Err(ApiError::not_found("nothing was uploaded to this URL (or it expired); upload the image first"));
    };
    // Read back only what may be an image; anything else is refused and deleted unread.
    let limit = declared_size.min(state.image_max_bytes);
    if size > limit {
        state.objects.delete(&staged).await?;
        return Err(ApiError::from_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE).with_detail(format!(
            "the upload is {size} bytes, over the {limit} bytes declared for it (images may be at most {}); it was deleted",
            state.image_max_bytes
        )));
    }
    let object = state.objects.get(&staged).await?.ok_or_else(|| ApiError::not_found("no such upload"))?;
    let sniffed = platform::objects::sniff_image(&object.bytes);
    if sniffed != Some(declared) {
        state.objects.delete(&staged).await?;
        let found = sniffed.map_or("not an image".to_owned(), |t| format!("an image of type {t}"));
        return Err(ApiError::invalid_field(
            "image",
            format!("the upload was declared {declared} but its bytes are {found}; it was deleted"),
        ));
    }
    if product.images.len() >= crate::domain::product::MAX_IMAGES {
        state.objects.delete(&staged).await?;
        return Err(ApiError::invalid_field("images", "a product has at most 20 images"));
    }
    // Published as this service writes it again, never as uploaded.
    let written = match crate::app::images::check(object.bytes, declared).await {
        Ok(written) => written,
        Err(refused) => {
            state.objects.delete(&staged).await?;
            return Err(ApiError::invalid_field("image", format!("{refused}; it was deleted")));
        }
    };
    // The resized copies first: once the image is listed, its copies are there for the pages.
    for (variant, bytes) in written.variants {
        let key = crate::app::images::variant_key(&image_key(&id, &name), variant);
        state.objects.put(&key, bytes.into(), "image/jpeg").await?;
    }
    state.objects.put(&image_key(&id, &name), written.original.into(), declared).await?;
    let before = product.clone();
    product.images.push(url.clone());
    product.updated_at = chrono::Utc::now();
    let event = crate::domain::product::upserted(&product, Some(&before), false).with_trace(&trace);
    if !state.catalog.products.replace(&product, &event).await? {
        return Err(ApiError::not_found("no such product"));
    }
    state.objects.delete(&staged).await?;
    state.pages.forget(&product.id);
    Ok(Json(PublishedImage { url, images: product.images }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/products/import", post(import_products))
        .route("/admin/v1/products/{id}/images", post(create_image))
        .route("/admin/v1/products/{id}/images/{upload}", post(complete_image))
}
