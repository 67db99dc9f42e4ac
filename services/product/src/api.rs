//! The product service's HTTP API.

pub mod categories;
pub mod products;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        categories::list_categories,
        products::get_product, products::create_product, products::replace_product, products::patch_product,
        products::delete_product,
    ),
    components(schemas(
        categories::CategoryList, crate::domain::category::Category, crate::domain::product::Product,
        crate::domain::product::Variant, crate::domain::product::ProductInput, crate::domain::product::VariantInput,
        crate::domain::product::ProductPatch, platform::money::Money,
    )),
    tags((name = "catalog", description = "Categories, products and search"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new().merge(categories::router()).merge(products::router())
}
