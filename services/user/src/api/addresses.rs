//! The address book: `GET, POST /v1/users/me/addresses`, `DELETE /v1/users/me/addresses/{id}`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use platform::auth::AuthUser;
use platform::http::{ApiError, Json, Page, Path, Validator};

use crate::AppState;
use crate::domain::{Address, AddressInput};

/// The most addresses one user keeps.
pub const MAX_ADDRESSES: usize = 50;

/// The signed-in user's addresses.
///
/// Oldest first, in one page: `next_cursor` is always null.
#[utoipa::path(get, path = "/v1/users/me/addresses", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The address book", body = Page<Address>)))]
pub async fn list_addresses(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
) -> Result<Json<Page<Address>>, ApiError> {
    let items = state.users.addresses(&claims.sub).await?;
    Ok(Json(Page::whole(items)))
}

/// Adds an address.
#[utoipa::path(post, path = "/v1/users/me/addresses", tag = "auth", request_body = AddressInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "The new address", body = Address),
        (status = 409, description = "The address book is full", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn add_address(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    Json(body): Json<AddressInput>,
) -> Result<(StatusCode, Json<Address>), ApiError> {
    let mut v = Validator::new();
    let address = body.validated(&mut v);
    v.finish()?;
    if state.users.addresses(&claims.sub).await?.len() >= MAX_ADDRESSES {
        return Err(ApiError::conflict(format!("an address book holds at most {MAX_ADDRESSES} addresses")));
    }
    let address = Address { id: uuid::Uuid::now_v7().to_string(), address };
    state.users.add_address(&claims.sub, &address).await?;
    Ok((StatusCode::CREATED, Json(address)))
}

/// Deletes one of the user's addresses; another user's address is not found.
#[utoipa::path(delete, path = "/v1/users/me/addresses/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "The address id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such address of this user", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(user.id = %claims.sub))]
pub async fn delete_address(
    State(state): State<AppState>,
    AuthUser(claims): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.users.delete_address(&claims.sub, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such address"))
    }
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/me/addresses", get(list_addresses).post(add_address))
        .route("/v1/users/me/addresses/{id}", delete(delete_address))
}
