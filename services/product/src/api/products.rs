//! Products: `GET /v1/products/{id}` (with `ETag` and `Cache-Control`; `If-None-Match` gets 304) and
//! the admin routes `POST /admin/v1/products`, `PUT, PATCH, DELETE /admin/v1/products/{id}`. Every
//! change records `product.upserted.v2` / `product.deleted.v1` in the same transaction.

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use platform::auth::AdminUser;
use platform::events::Event;
use platform::http::{ApiError, Json, Path, Validator};
use platform::telemetry::trace::TraceContext;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::domain::product::{Product, ProductInput, ProductPatch, build};

/// How long clients and the CDN may reuse a product answer.
const CACHE_CONTROL: &str = "public, max-age=60";

/// A request's `If-None-Match`, alone (where taking the whole `HeaderMap` would copy every header).
#[derive(Debug, Default)]
pub struct IfNoneMatch(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

/// Answers `body` as JSON with an `ETag`, or 304 when the client's `If-None-Match` matches it.
pub fn cached_json(condition: &IfNoneMatch, body: &impl serde::Serialize) -> Response {
    let (bytes, etag) = rendered(body);
    respond(condition, bytes, etag)
}

/// `body` as JSON bytes and their `ETag`.
pub fn rendered(body: &impl serde::Serialize) -> (Bytes, HeaderValue) {
    let bytes = serde_json::to_vec(body).expect("a response body serializes");
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    (Bytes::from(bytes), HeaderValue::from_str(&etag).expect("hex digits are a header value"))
}

/// Answers rendered JSON with its `ETag`, or 304 when the client's `If-None-Match` matches it.
pub fn respond(condition: &IfNoneMatch, bytes: Bytes, etag: HeaderValue) -> Response {
    let matches = condition
        .0
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().as_bytes() == etag.as_bytes() || tag.trim() == "*"));
    let cache = [(header::ETAG, etag), (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL))];
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn upserted(product: &Product, before: Option<&Product>, trace: &TraceContext) -> Event {
    crate::domain::product::upserted(product, before, before.is_none()).with_trace(trace)
}

/// A product.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 304, description = "Not modified since the ETag sent in If-None-Match"),
        (status = 404, description = "No such product", content_type = "application/problem+json"),
    ))]
pub async fn get_product(
    State(state): State<AppState>,
    condition: IfNoneMatch,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some((bytes, etag)) = state.pages.get(&id) {
        return Ok(respond(&condition, bytes, etag));
    }
    let product = state.catalog.products.get(&id).await?;
    let product = product.ok_or_else(|| ApiError::not_found("no such product"))?;
    let (bytes, etag) = rendered(&product);
    state.pages.put(&id, bytes.clone(), etag.clone());
    Ok(respond(&condition, bytes, etag))
}

/// Creates a product.
#[utoipa::path(post, path = "/admin/v1/products", tag = "catalog", request_body = ProductInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "The new product", body = Product),
        (status = 409, description = "A SKU belongs to another product", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (an unknown category, a negative price, …)", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(product.id, user.id = %admin.sub))]
pub async fn create_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    trace: TraceContext,
    Json(input): Json<ProductInput>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    let mut v = Validator::new();
    let id = uuid::Uuid::now_v7().to_string();
    tracing::Span::current().record("product.id", id.as_str());
    let product = build(input, id, Vec::new(), false, chrono::Utc::now(), &mut v);
    v.finish()?;
    let product = product.expect("validated");
    state.catalog.products.insert(&product, &upserted(&product, None, &trace)).await?;
    state.pages.forget(&product.id);
    // As stored: the store sets `in_stock` from the SKUs' known stock.
    let stored = current(&state, &product.id).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

async fn save(
    state: &AppState,
    current: Product,
    input: ProductInput,
    trace: &TraceContext,
) -> Result<Json<Product>, ApiError> {
    let mut v = Validator::new();
    let product =
        build(input, current.id.clone(), current.images.clone(), current.in_stock, current.created_at, &mut v);
    v.finish()?;
    let product = product.expect("validated");
    if !state.catalog.products.replace(&product, &upserted(&product, Some(&current), trace)).await? {
        return Err(ApiError::not_found("no such product"));
    }
    state.pages.forget(&product.id);
    Ok(Json(self::current(state, &product.id).await?))
}

async fn current(state: &AppState, id: &str) -> Result<Product, ApiError> {
    state.catalog.products.get(id).await?.ok_or_else(|| ApiError::not_found("no such product"))
}

/// Replaces a product.
#[utoipa::path(put, path = "/admin/v1/products/{id}", tag = "catalog", request_body = ProductInput, security(("bearer" = [])),
    params(("id" = String, Path, description = "The product id")),
    responses((status = 200, description = "The product", body = Product), (status = 404, description = "No such product", content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(product.id = %id, user.id = %admin.sub))]
pub async fn replace_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    trace: TraceContext,
    Path(id): Path<String>,
    Json(input): Json<ProductInput>,
) -> Result<Json<Product>, ApiError> {
    let current = current(&state, &id).await?;
    save(&state, current, input, &trace).await
}

/// Changes some fields of a product.
#[utoipa::path(patch, path = "/admin/v1/products/{id}", tag = "catalog", request_body = ProductPatch, security(("bearer" = [])),
    params(("id" = String, Path, description = "The product id")),
    responses((status = 200, description = "The product", body = Product), (status = 404, description = "No such product", content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(product.id = %id, user.id = %admin.sub))]
pub async fn patch_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    trace: TraceContext,
    Path(id): Path<String>,
    Json(patch): Json<ProductPatch>,
) -> Result<Json<Product>, ApiError> {
    let current = current(&state, &id).await?;
    let input = patch.apply(&current);
    save(&state, current, input, &trace).await
}

/// Deletes a product.
#[utoipa::path(delete, path = "/admin/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "The product id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such product", content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(product.id = %id, user.id = %admin.sub))]
pub async fn delete_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    trace: TraceContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let event = crate::domain::product::deleted(&id).with_trace(&trace);
    if !state.catalog.products.delete(&id, &event).await? {
        return Err(ApiError::not_found("no such product"));
    }
    state.pages.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/products/{id}", get(get_product)).route("/admin/v1/products", post(create_product)).route(
        "/admin/v1/products/{id}",
        axum::routing::put(replace_product).patch(patch_product).delete(delete_product),
    )
}
