//! The product service's HTTP API.

pub mod admin;
pub mod categories;
pub mod products;
pub mod search;
pub mod skus;

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        categories::list_categories, categories::create_category,
        products::get_product, products::create_product, products::replace_product, products::patch_product,
        products::delete_product, search::search_products, skus::get_skus, admin::import_products, admin::create_image,
        admin::complete_image,
    ),
    components(schemas(
        categories::CategoryList, categories::CategoryInput, crate::domain::category::Category, crate::domain::product::Product,
        crate::domain::product::Variant, crate::domain::product::ProductInput, crate::domain::product::VariantInput,
        crate::domain::product::ProductPatch, platform::money::Money, search::SearchResults,
        crate::search::ProductSummary, crate::search::Facets, crate::search::FacetCount, crate::search::PriceBucket,
        crate::app::import::ImportReport, crate::app::import::LineError, admin::ImageRequest, admin::ImageUpload, admin::PublishedImage,
        platform::objects::PresignedUpload, skus::SkuInfo, skus::SkuList,
    )),
    tags((name = "catalog", description = "Categories, products and search"))
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::http::docs::complete(ApiDoc::openapi())
}

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(categories::router())
        .merge(products::router())
        .merge(search::router())
        .merge(skus::router())
        .merge(admin::router())
}
