//! `GET /v1/categories`: the category tree.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use platform::http::ApiError;
use serde::Serialize;

use crate::AppState;
use crate::domain::category::Category;

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
pub async fn list_categories(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let items = state.categories.list().await.map_err(ApiError::internal)?;
    Ok(super::products::cached_json(&headers, &CategoryList { items }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/categories", get(list_categories))
}
