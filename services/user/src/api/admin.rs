//! `GET /admin/v1/users`: admins search accounts by email or name.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Page, Query, Validator, docs};
use serde::Deserialize;

use crate::AppState;
use crate::domain::User;

/// The query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Part of an email or name (case-insensitive); empty lists everyone.
    #[serde(default)]
    pub q: String,
    /// Page size, 1–100 (default 20).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Searches users.
///
/// Ordered by id.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin", params(SearchQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        docs::Unauthenticated,
        docs::NotAdmin,
    ))]
pub async fn search_users(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Page<User>>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    let mut v = Validator::new();
    v.check((1..=100).contains(&limit), "limit", "must be between 1 and 100");
    v.check(query.q.chars().count() <= 200, "q", "must be at most 200 characters");
    v.finish()?;
    let mut items = state.users.search(query.q.trim(), query.cursor.as_deref(), limit + 1).await?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|u| u.id.clone()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_cursor }))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/users", get(search_users))
}
