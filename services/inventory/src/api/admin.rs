//! Admin stock tools: list (low-stock) SKUs, read, set and adjust a SKU's stock, read its ledger,
//! and read an order's reservation. Every route needs an admin signed in with a second factor.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use platform::auth::AdminUser;
use platform::http::{ApiError, Json, Page, Path, Query, Validator, docs, page_limit};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::domain::{LedgerEntry, MAX_ORDER_ID, Reservation, Stock};

/// Largest units on hand an admin may set, or adjust by.
const MAX_UNITS: i64 = crate::store::MAX_ON_HAND;

/// Longest adjustment reason.
const MAX_REASON: usize = 200;

/// A SKU's stock as admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StockView {
    /// The SKU.
    pub sku: String,
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units held for orders not yet confirmed.
    pub reserved: i64,
    /// Units that can be sold (on hand less reserved).
    pub available: i64,
    /// At or under this many available units the SKU is low on stock.
    pub low_stock_threshold: i64,
    /// Whether it is low on stock now.
    pub low_stock: bool,
    /// Grows with every change of the SKU.
    pub version: i64,
}

impl From<Stock> for StockView {
    fn from(stock: Stock) -> Self {
        Self {
            available: stock.available(),
            low_stock: stock.is_low(),
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            low_stock_threshold: stock.low_stock_threshold,
            version: stock.version,
            sku: stock.sku,
        }
    }
}

/// `PUT /admin/v1/inventory/{sku}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStockRequest {
    /// Units on hand, 0 or more.
    pub on_hand: i64,
    /// At or under this many available units the SKU is low on stock (kept when absent; 0 for a
    /// new SKU).
    pub low_stock_threshold: Option<i64>,
}

/// `POST /admin/v1/inventory/{sku}/adjust`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Units to add (negative: remove); not 0.
    pub delta: i64,
    /// Why, for the ledger (1–200 characters): `cycle count`, `damaged`, `received PO-1234`.
    pub reason: String,
}

/// `GET /admin/v1/inventory` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only SKUs at or under their threshold.
    pub low_stock: Option<bool>,
    /// Page size, 1–100 (20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /admin/v1/inventory/{sku}/ledger` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1–100 (20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn check_sku(sku: &str) -> Result<(), ApiError> {
    if !platform::sku::is_valid(sku) {
        return Err(ApiError::invalid_field("sku", "must be 1-64 letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}

/// The stock of a known SKU; 404 otherwise (a malformed SKU is never known).
pub async fn known_stock(state: &AppState, sku: &str) -> Result<Stock, ApiError> {
    let not_found = || ApiError::not_found(format!("no SKU {sku:?}"));
    if !platform::sku::is_valid(sku) {
        return Err(not_found());
    }
    state.store.get(sku).await?.ok_or_else(not_found)
}

/// SKUs in pages; only those at or under their low-stock threshold with `low_stock=true`.
#[utoipa::path(get, path = "/admin/v1/inventory", tag = "inventory", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of SKUs", body = Page<StockView>),
        docs::NotAdmin,
        (status = 422, description = "Bad limit or cursor", content_type = "application/problem+json"),
    ))]
pub async fn list_stock(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<StockView>>, ApiError> {
    let limit = page_limit(params.limit)?;
    if params.cursor.as_deref().is_some_and(|cursor| !platform::sku::is_valid(cursor)) {
        return Err(ApiError::invalid_field("cursor", "is not a cursor this endpoint gave"));
    }
    let stock = state.store.list(params.low_stock.unwrap_or(false), params.cursor.as_deref(), limit).await?;
    let items = stock.into_iter().map(StockView::from).collect();
    Ok(Json(Page::new(items, limit, |s| s.sku.clone())))
}

/// One SKU's stock.
#[utoipa::path(get, path = "/admin/v1/inventory/{sku}", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU")),
    responses(
        (status = 200, description = "The stock", body = StockView),
        docs::NotAdmin,
        (status = 404, description = "Unknown SKU", content_type = "application/problem+json"),
    ))]
pub async fn get_stock(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(sku): Path<String>,
) -> Result<Json<StockView>, ApiError> {
    Ok(Json(known_stock(&state, &sku).await?.into()))
}

/// Sets a SKU's units on hand (creating the SKU) and optionally its low-stock threshold. The
/// ledger records the difference.
#[utoipa::path(put, path = "/admin/v1/inventory/{sku}", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU")), request_body = SetStockRequest,
    responses(
        (status = 200, description = "The stock as set", body = StockView),
        docs::NotAdmin,
        (status = 409, description = "Fewer units than are reserved", content_type = "application/problem+json"),
        (status = 422, description = "Negative or too large numbers, or a bad SKU", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(sku = %sku, user.id = %admin.sub))]
pub async fn set_stock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(sku): Path<String>,
    Json(input): Json<SetStockRequest>,
) -> Result<Json<StockView>, ApiError> {
    check_sku(&sku)?;
    let mut v = Validator::new();
    v.check((0..=MAX_UNITS).contains(&input.on_hand), "on_hand", "must be 0 to 1,000,000,000");
    if let Some(threshold) = input.low_stock_threshold {
        v.check((0..=MAX_UNITS).contains(&threshold), "low_stock_threshold", "must be 0 to 1,000,000,000");
    }
    v.finish()?;
    let stock =
        state.store.set(&sku, input.on_hand, input.low_stock_threshold, "stock set by an admin", &admin.sub).await?;
    Ok(Json(stock.into()))
}

/// Adds (or removes) units on hand with a reason, recorded in the SKU's ledger.
#[utoipa::path(post, path = "/admin/v1/inventory/{sku}/adjust", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU")), request_body = AdjustRequest,
    responses(
        (status = 200, description = "The stock after the adjustment", body = StockView),
        docs::NotAdmin,
        (status = 404, description = "Unknown SKU", content_type = "application/problem+json"),
        (status = 409, description = "Would leave fewer units than are reserved", content_type = "application/problem+json"),
        (status = 422, description = "A zero or too large delta, or no reason", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(sku = %sku, user.id = %admin.sub))]
pub async fn adjust_stock(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(sku): Path<String>,
    Json(input): Json<AdjustRequest>,
) -> Result<Json<StockView>, ApiError> {
    let mut v = Validator::new();
    v.check(
        input.delta != 0 && (-MAX_UNITS..=MAX_UNITS).contains(&input.delta),
        "delta",
        "must be non-zero, at most 1,000,000,000 either way",
    );
    let reason = input.reason.trim();
    v.check(
        !reason.is_empty() && reason.chars().count() <= MAX_REASON && !reason.chars().any(char::is_control),
        "reason",
        "must be 1 to 200 characters of text",
    );
    v.finish()?;
    if !platform::sku::is_valid(&sku) {
        return Err(ApiError::not_found(format!("no SKU {sku:?}")));
    }
    let stock = state.store.adjust(&sku, input.delta, reason, &admin.sub).await?;
    Ok(Json(stock.into()))
}

/// A SKU's ledger, newest first: every change of its units on hand.
#[utoipa::path(get, path = "/admin/v1/inventory/{sku}/ledger", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU"), PageParams),
    responses(
        (status = 200, description = "A page of the ledger", body = Page<LedgerEntry>),
        docs::NotAdmin,
        (status = 404, description = "Unknown SKU", content_type = "application/problem+json"),
    ))]
pub async fn get_ledger(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    Path(sku): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Page<LedgerEntry>>, ApiError> {
    let limit = page_limit(params.limit)?;
    let before = match &params.cursor {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor this endpoint gave"))?,
        ),
    };
    known_stock(&state, &sku).await?;
    let items = state.store.ledger(&sku, before, limit).await?;
    Ok(Json(Page::new(items, limit, |e| e.seq.to_string())))
}

/// An order's reservation: what it holds and where it stands.
#[utoipa::path(get, path = "/admin/v1/reservations/{order_id}", tag = "inventory", security(("bearer" = [])),
    params(("order_id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        docs::NotAdmin,
        (status = 404, description = "No reservation for the order", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(order.id = %order_id, user.id = %admin.sub))]
pub async fn get_reservation(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(order_id): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    if order_id.is_empty() || order_id.len() > MAX_ORDER_ID {
        return Err(ApiError::not_found(format!("no reservation for order {order_id:?}")));
    }
    let reservation = state.store.reservation(&order_id).await?;
    Ok(Json(reservation.ok_or_else(|| ApiError::not_found(format!("no reservation for order {order_id:?}")))?))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/inventory", get(list_stock))
        .route("/admin/v1/inventory/{sku}", get(get_stock).put(set_stock))
        .route("/admin/v1/inventory/{sku}/adjust", post(adjust_stock))
        .route("/admin/v1/inventory/{sku}/ledger", get(get_ledger))
        .route("/admin/v1/reservations/{order_id}", get(get_reservation))
}
