//! Guest carts: `POST /v1/carts`, `GET /v1/carts/{id}`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use platform::http::{ApiError, Json, Path};
use platform::money::Money;

use crate::domain::{Cart, CartResponse, is_cart_id, new_cart_id};
use crate::{AppState, CURRENCY};

fn respond(cart: Cart) -> CartResponse {
    // Lines are priced from the catalog at read time; the catalog client arrives with checkout.
    CartResponse { id: cart.id, items: Vec::new(), subtotal: Money::zero(&cart.currency) }
}

/// Creates an empty guest cart. Its id is its bearer secret: keep it private.
#[utoipa::path(post, path = "/v1/carts", tag = "carts",
    responses((status = 201, description = "The new cart", body = CartResponse)))]
pub async fn create_cart(State(state): State<AppState>) -> Result<(StatusCode, Json<CartResponse>), ApiError> {
    let cart = Cart { id: new_cart_id(), owner_id: None, currency: CURRENCY.into(), lines: Vec::new() };
    state.carts.create(&cart).await.map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(respond(cart))))
}

/// A guest cart, priced now.
#[utoipa::path(get, path = "/v1/carts/{id}", tag = "carts",
    params(("id" = String, Path, description = "The cart id")),
    responses(
        (status = 200, description = "The cart", body = CartResponse),
        (status = 404, description = "No such cart", content_type = "application/problem+json"),
    ))]
pub async fn get_cart(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<CartResponse>, ApiError> {
    let not_found = || ApiError::not_found("no such cart");
    if !is_cart_id(&id) {
        return Err(not_found());
    }
    let cart = state.carts.get(&id).await.map_err(ApiError::internal)?.ok_or_else(not_found)?;
    // A persistent cart is reached through /v1/cart with its owner's token, never by id.
    if cart.owner_id.is_some() {
        return Err(not_found());
    }
    Ok(Json(respond(cart)))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/carts", post(create_cart)).route("/v1/carts/{id}", get(get_cart))
}
