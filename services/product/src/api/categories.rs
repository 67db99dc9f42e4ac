//! `GET /v1/categories`: the category tree.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::http::{ApiError, Json};
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
    responses((status = 200, description = "The category tree", body = CategoryList)))]
pub async fn list_categories(State(state): State<AppState>) -> Result<Json<CategoryList>, ApiError> {
    let items = state.categories.list().await.map_err(ApiError::internal)?;
    Ok(Json(CategoryList { items }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/categories", get(list_categories))
}
