//! The pricing engine's settings, for admins: shipping zones (`/admin/v1/shipping-zones`, with
//! their methods and tax rates) and promotions (`/admin/v1/promotions`, automatic or by code); and
//! for shoppers, the promotions a shop tells them about (`/v1/promotions`).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Page, Path, Validator};

use crate::AppState;
use crate::domain::promotion::{Featured, Promotion, PromotionInput, new_promotion_id};
use crate::domain::shipping::{Zone, ZoneInput, new_zone_id};

async fn find_zone(state: &AppState, id: &str) -> Result<Zone, ApiError> {
    let zones = state.pricing.zones().await?;
    zones.into_iter().find(|z| z.id == id).ok_or_else(|| ApiError::not_found("no such shipping zone"))
}

async fn find_promotion(state: &AppState, id: &str) -> Result<Promotion, ApiError> {
    let promotions = state.pricing.promotions().await?;
    promotions.into_iter().find(|p| p.id == id).ok_or_else(|| ApiError::not_found("no such promotion"))
}

/// Every shipping zone.
#[utoipa::path(get, path = "/admin/v1/shipping-zones", tag = "pricing", security(("bearer" = [])),
    responses((status = 200, description = "Every zone, oldest first (one page)", body = Page<Zone>)))]
pub async fn list_zones(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> Result<Json<Page<Zone>>, ApiError> {
    Ok(Json(Page { items: state.pricing.zones().await?, next_cursor: None }))
}

/// Makes a shipping zone.
#[utoipa::path(post, path = "/admin/v1/shipping-zones", tag = "pricing", security(("bearer" = [])), request_body = ZoneInput,
    responses(
        (status = 201, description = "The zone", body = Zone),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(zone.id, user.id = %admin.sub))]
pub async fn create_zone(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(input): Json<ZoneInput>,
) -> Result<(StatusCode, Json<Zone>), ApiError> {
    let mut v = Validator::new();
    let id = new_zone_id();
    tracing::Span::current().record("zone.id", id.as_str());
    let zone = input.build(id, &mut v);
    v.finish()?;
    let zone = zone.expect("validated");
    state.pricing.put_zone(&zone).await?;
    state.pricing_cache.forget();
    Ok((StatusCode::CREATED, Json(zone)))
}

/// A shipping zone.
#[utoipa::path(get, path = "/admin/v1/shipping-zones/{id}", tag = "pricing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The zone id")),
    responses((status = 200, description = "The zone", body = Zone), (status = 404, description = "No such zone", content_type = "application/problem+json")))]
pub async fn get_zone(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Zone>, ApiError> {
    Ok(Json(find_zone(&state, &id).await?))
}

/// Replaces a shipping zone.
#[utoipa::path(put, path = "/admin/v1/shipping-zones/{id}", tag = "pricing", security(("bearer" = [])), request_body = ZoneInput,
    params(("id" = String, Path, description = "The zone id")),
    responses(
        (status = 200, description = "The zone", body = Zone),
        (status = 404, description = "No such zone", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(zone.id = %id, user.id = %admin.sub))]
pub async fn replace_zone(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(input): Json<ZoneInput>,
) -> Result<Json<Zone>, ApiError> {
    find_zone(&state, &id).await?;
    let mut v = Validator::new();
    let zone = input.build(id, &mut v);
    v.finish()?;
    let zone = zone.expect("validated");
    state.pricing.put_zone(&zone).await?;
    state.pricing_cache.forget();
    Ok(Json(zone))
}

/// Deletes a shipping zone (carts that chose one of its methods choose again).
#[utoipa::path(delete, path = "/admin/v1/shipping-zones/{id}", tag = "pricing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The zone id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such zone", content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(zone.id = %id, user.id = %admin.sub))]
pub async fn delete_zone(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.pricing.delete_zone(&id).await? {
        return Err(ApiError::not_found("no such shipping zone"));
    }
    state.pricing_cache.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// Every promotion.
#[utoipa::path(get, path = "/admin/v1/promotions", tag = "pricing", security(("bearer" = [])),
    responses((status = 200, description = "Every promotion, oldest first (one page)", body = Page<Promotion>)))]
pub async fn list_promotions(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> Result<Json<Page<Promotion>>, ApiError> {
    Ok(Json(Page { items: state.pricing.promotions().await?, next_cursor: None }))
}

/// The promotions shoppers are told about: featured ones in force now, open to everyone, highest
/// priority first. The same for everyone, so caches may keep it a minute.
#[utoipa::path(get, path = "/v1/promotions", tag = "pricing",
    responses((status = 200, description = "The featured promotions in force (one page)", body = Page<Featured>,
        headers(("Cache-Control" = String, description = "public, max-age=60")))))]
pub async fn featured_promotions(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let settings = state.pricing_cache.get().await?;
    let now = chrono::Utc::now();
    let mut shown: Vec<&Promotion> = settings.promotions.iter().filter(|p| p.is_advertised(now)).collect();
    shown.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
    let page = Page { items: shown.into_iter().map(Promotion::featured).collect(), next_cursor: None };
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(page)))
}

/// Makes a promotion.
#[utoipa::path(post, path = "/admin/v1/promotions", tag = "pricing", security(("bearer" = [])), request_body = PromotionInput,
    responses(
        (status = 201, description = "The promotion", body = Promotion),
        (status = 409, description = "Another promotion has the code", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(promotion.id, user.id = %admin.sub))]
pub async fn create_promotion(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(input): Json<PromotionInput>,
) -> Result<(StatusCode, Json<Promotion>), ApiError> {
    let mut v = Validator::new();
    let id = new_promotion_id();
    tracing::Span::current().record("promotion.id", id.as_str());
    let now = chrono::Utc::now();
    let promotion = input.build(id, now, now, &mut v);
    v.finish()?;
    let promotion = promotion.expect("validated");
    state.pricing.put_promotion(&promotion, true).await?;
    state.pricing_cache.forget();
    Ok((StatusCode::CREATED, Json(promotion)))
}

/// A promotion.
#[utoipa::path(get, path = "/admin/v1/promotions/{id}", tag = "pricing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The promotion id")),
    responses((status = 200, description = "The promotion", body = Promotion), (status = 404, description = "No such promotion", content_type = "application/problem+json")))]
pub async fn get_promotion(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(find_promotion(&state, &id).await?))
}

/// Replaces a promotion (its uses so far still count against its limits).
#[utoipa::path(put, path = "/admin/v1/promotions/{id}", tag = "pricing", security(("bearer" = [])), request_body = PromotionInput,
    params(("id" = String, Path, description = "The promotion id")),
    responses(
        (status = 200, description = "The promotion", body = Promotion),
        (status = 404, description = "No such promotion", content_type = "application/problem+json"),
        (status = 409, description = "Another promotion has the code", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(promotion.id = %id, user.id = %admin.sub))]
pub async fn replace_promotion(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    Json(input): Json<PromotionInput>,
) -> Result<Json<Promotion>, ApiError> {
    let current = find_promotion(&state, &id).await?;
    let mut v = Validator::new();
    let promotion = input.build(id, current.created_at, chrono::Utc::now(), &mut v);
    v.finish()?;
    let promotion = promotion.expect("validated");
    if !state.pricing.put_promotion(&promotion, false).await? {
        return Err(ApiError::not_found("no such promotion"));
    }
    state.pricing_cache.forget();
    Ok(Json(promotion))
}

/// Deletes a promotion (its code is free again; orders that used it keep their prices).
#[utoipa::path(delete, path = "/admin/v1/promotions/{id}", tag = "pricing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The promotion id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such promotion", content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(promotion.id = %id, user.id = %admin.sub))]
pub async fn delete_promotion(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.pricing.delete_promotion(&id).await? {
        return Err(ApiError::not_found("no such promotion"));
    }
    state.pricing_cache.forget();
    Ok(StatusCode::NO_CONTENT)
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/shipping-zones", get(list_zones).post(create_zone))
        .route("/admin/v1/shipping-zones/{id}", get(get_zone).put(replace_zone).delete(delete_zone))
        .route("/v1/promotions", get(featured_promotions))
        .route("/admin/v1/promotions", get(list_promotions).post(create_promotion))
        .route("/admin/v1/promotions/{id}", get(get_promotion).put(replace_promotion).delete(delete_promotion))
}
