//! `GET /v1/categories`: the category tree; `POST /admin/v1/categories` adds a category.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Validator};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::domain::category::{Category, is_valid_slug, slugify};

/// The category tree, parents before children.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryList {
    /// Every category.
    pub items: Vec<Category>,
}

/// The category tree.
#[utoipa::path(get, path = "/v1/categories", tag = "catalog",
    responses(
        (status = 200, description = "The category tree", body = CategoryList),
        (status = 304, description = "Not modified since the ETag sent in If-None-Match"),
    ))]
pub async fn list_categories(
    State(state): State<AppState>,
    condition: super::products::IfNoneMatch,
) -> Result<Response, ApiError> {
    let items = state.catalog.categories.list().await?;
    Ok(super::products::cached_json(&condition, &CategoryList { items }))
}

/// A new category.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// Display name.
    pub name: String,
    /// URL-safe unique name (default: made from the name).
    #[serde(default)]
    pub slug: Option<String>,
    /// The parent category, if any.
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Adds a category to the tree.
#[utoipa::path(post, path = "/admin/v1/categories", tag = "catalog", request_body = CategoryInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "The new category", body = Category),
        (status = 409, description = "The slug is taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or an unknown parent", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %admin.sub))]
pub async fn create_category(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(input): Json<CategoryInput>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    let name = input.name.trim().to_owned();
    let slug = input.slug.map(|s| s.trim().to_owned()).unwrap_or_else(|| slugify(&name));
    let mut v = Validator::new();
    v.check(!name.is_empty() && name.chars().count() <= 100, "name", "must be 1 to 100 characters");
    v.check(is_valid_slug(&slug), "slug", "must be lowercase letters and digits joined by single hyphens");
    v.finish()?;
    let category = Category { id: format!("cat-{slug}"), name, parent_id: input.parent_id, slug };
    state.catalog.categories.insert(&category).await?;
    state.tree.refresh().await?;
    Ok((StatusCode::CREATED, Json(category)))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/categories", get(list_categories)).route("/admin/v1/categories", post(create_category))
}
