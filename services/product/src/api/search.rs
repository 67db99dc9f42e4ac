//! `GET /v1/products`: search and browse. Full-text relevance over name, brand and description
//! (typo-tolerant on longer words), filters (category with its sub-categories, brand, price range,
//! stock), facet counts over every match, sorts, cursor pagination and the total.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use platform::http::{ApiError, Query, Validator};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::app::indexer::CategoryTree;
use crate::search::{Cursor, Facets, MAX_LIMIT, ProductSummary, SearchQuery, Sort};

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;

/// Longest text query, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// The query string of a search.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find in name, brand and description.
    pub q: Option<String>,
    /// `true`: the last word of `q` may be the start of a word, as when suggesting while a shopper
    /// types ("wireless lapt" finds wireless laptops).
    pub prefix: Option<bool>,
    /// A category id or slug: its products and its sub-categories'.
    pub category: Option<String>,
    /// A brand, exactly as the brand facet names it.
    pub brand: Option<String>,
    /// Lowest price in minor units (cents), inclusive.
    pub min_price: Option<i64>,
    /// Highest price in minor units (cents), inclusive.
    pub max_price: Option<i64>,
    /// `true`: only products in stock; `false`: only products out of stock.
    pub in_stock: Option<bool>,
    /// `relevance` (default; newest first without `q`), `price_asc`, `price_desc` or `newest`.
    #[param(value_type = Option<String>)]
    pub sort: Option<Sort>,
    /// Results per page, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of search results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    /// This page's products.
    pub items: Vec<ProductSummary>,
    /// How many products match in all.
    pub total: u64,
    /// Counts by brand, category and price bucket over every match.
    pub facets: Facets,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Checks `params` into a query (the category resolved to its id), or the field errors.
pub async fn parse(state: &AppState, params: SearchParams) -> Result<SearchQuery, ApiError> {
    let tree = match params.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(_) => Some(state.tree.get().await?),
        None => None,
    };
    params.into_query(tree.as_deref().unwrap_or(&CategoryTree::default()))
}

impl SearchParams {
    /// Checks the parameters into a query, the category resolved in `tree`, or the field errors.
    pub fn into_query(self, tree: &CategoryTree) -> Result<SearchQuery, ApiError> {
        let params = self;
        let mut v = Validator::new();
        let text = params.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        v.check(
            text.as_ref().is_none_or(|q| q.chars().count() <= MAX_QUERY_CHARS),
            "q",
            "must be at most 200 characters",
        );
        v.check(params.min_price.is_none_or(|p| p >= 0), "min_price", "must not be negative");
        v.check(params.max_price.is_none_or(|p| p >= 0), "max_price", "must not be negative");
        if let (Some(min), Some(max)) = (params.min_price, params.max_price) {
            v.check(min <= max, "max_price", "must not be below min_price");
        }
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        v.check((1..=MAX_LIMIT).contains(&limit), "limit", "must be between 1 and 100");
        let after = params.cursor.as_deref().map(Cursor::decode);
        v.check(!matches!(after, Some(None)), "cursor", "is not a cursor this API gave");
        let brand = params.brand.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty());
        let category = match params.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(key) => {
                let id = tree.resolve(key).map(str::to_owned);
                v.check(id.is_some(), "category", "no such category");
                id
            }
        };
        v.finish()?;
        Ok(SearchQuery {
            prefix: params.prefix.unwrap_or(false) && text.is_some(),
            text,
            category,
            brand,
            min_price: params.min_price,
            max_price: params.max_price,
            in_stock: params.in_stock,
            sort: params.sort.unwrap_or_default(),
            limit,
            after: after.flatten(),
        })
    }
}

/// Searches and browses the catalog.
#[utoipa::path(get, path = "/v1/products", tag = "catalog", params(SearchParams),
    responses(
        (status = 200, description = "A page of matching products with facet counts", body = SearchResults),
        (status = 304, description = "Not modified since the ETag sent in If-None-Match"),
        (status = 400, description = "A malformed query string", content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters (an unknown category, a negative price, …)", content_type = "application/problem+json"),
    ))]
pub async fn search_products(
    State(state): State<AppState>,
    condition: super::products::IfNoneMatch,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let query = parse(&state, params).await?;
    let page = state.index.search(&query).await?;
    let results = SearchResults {
        items: page.items,
        total: page.total,
        facets: page.facets,
        next_cursor: page.next.map(|c| c.encode()),
    };
    Ok(super::products::cached_json(&condition, &results))
}

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/products", get(search_products))
}
