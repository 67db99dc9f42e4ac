//! The product service: the catalog (categories, products, variants), its search index and images.
//!
//! `router(state)` is the service's API; `build` wires it to the process's infrastructure and the
//! shop crate serves it as its own process (the `product-service` binary).

pub mod api;
pub mod app;
pub mod consumers;
pub mod domain;
pub mod search;
pub mod settings;
pub mod store;

use std::sync::Arc;

use axum::Router;
use platform::infra::{Infra, Service};
use platform::sqlite::Migration;

use anyhow::Context;
use axum::extract::FromRef;
use platform::auth::TokenVerifier;
use platform::config::StoreBackend;
use platform::events::Consumer;
use platform::events::outbox::{OutboxSignal, OutboxStore, SqliteOutbox};
use platform::http::ops::ReadinessCheck;
use platform::objects::ObjectStore;
use platform::sqlite::Db;

use crate::app::indexer::{Indexer, TreeCache};
use crate::app::pages::PageCache;
use crate::search::SearchIndex;
use crate::search::opensearch::OpenSearchIndex;
use crate::search::tantivy::TantivyIndex;
use crate::settings::{SearchBackend, Settings};
use crate::store::dynamodb::DynamoCatalogStore;
use crate::store::sqlite::{SqliteCategoryStore, SqliteProductStore};
use crate::store::{CategoryStore, ProductStore};

/// The service's name (its database file, its queue, its metrics dimension).
pub const NAME: &str = "product";

/// The service's SQLite schema.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        scope: NAME,
        version: 1,
        name: "categories",
        sql: include_str!("../../../migrations/product/sqlite/0001_categories.sql"),
    },
    Migration {
        scope: NAME,
        version: 2,
        name: "products",
        sql: include_str!("../../../migrations/product/sqlite/0002_products.sql"),
    },
    Migration {
        scope: NAME,
        version: 3,
        name: "stock_levels",
        sql: include_str!("../../../migrations/product/sqlite/0003_stock_levels.sql"),
    },
    Migration {
        scope: NAME,
        version: 4,
        name: "stock_level_versions",
        sql: include_str!("../../../migrations/product/sqlite/0004_stock_level_versions.sql"),
    },
    Migration {
        scope: NAME,
        version: 5,
        name: "product_revisions",
        sql: include_str!("../../../migrations/product/sqlite/0005_product_revisions.sql"),
    },
    Migration {
        scope: NAME,
        version: 6,
        name: "tax_category_and_weights",
        sql: include_str!("../../../migrations/product/sqlite/0006_tax_category_and_weights.sql"),
    },
];

/// The catalog stores: what the tools (import, seed) need.
#[derive(Clone)]
pub struct Catalog {
    /// The category tree.
    pub categories: Arc<dyn CategoryStore>,
    /// Products (waking the service's outbox relay after writes, where one runs).
    pub products: Arc<dyn ProductStore>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The stores.
    pub catalog: Catalog,
    /// The search index.
    pub index: Arc<dyn SearchIndex>,
    /// The category tree, cached (category filters, the indexer's category paths).
    pub tree: Arc<TreeCache>,
    /// Rendered product pages, kept briefly.
    pub pages: Arc<PageCache>,
    /// Product images.
    pub objects: Arc<dyn ObjectStore>,
    /// Largest image upload in bytes.
    pub image_max_bytes: u64,
    /// Largest NDJSON import body in bytes.
    pub bulk_body_limit: usize,
    /// Verifies access tokens (admin routes).
    pub verifier: Arc<TokenVerifier>,
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// The service's API routes.
pub fn router(state: AppState) -> Router {
    api::router().with_state(state)
}

/// Opens the catalog stores (migrating them) on `infra`, for tools that run no relay: events they
/// write wait in the outbox for the service's relay.
pub async fn open_catalog(infra: &Infra) -> anyhow::Result<Catalog> {
    let (categories, products, _) = stores(infra, OutboxSignal::default()).await?;
    Ok(Catalog { categories, products })
}

/// The service's outbox on the stores `infra`'s configuration names (for `shop events parked`).
pub async fn outbox(infra: &Infra) -> anyhow::Result<Arc<dyn OutboxStore>> {
    Ok(stores(infra, OutboxSignal::default()).await?.2.outbox())
}

type Stores = (Arc<dyn CategoryStore>, Arc<dyn ProductStore>, Arc<dyn BackendParts>);

/// What a store backend adds to the process: its outbox (for the relay) and its readiness check.
trait BackendParts: Send + Sync {
    /// The outbox the relay publishes from.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
    /// The readiness check of the backend.
    fn check(&self) -> Arc<dyn ReadinessCheck>;
}

struct SqliteBackend(Db);

impl BackendParts for SqliteBackend {
    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(SqliteOutbox(self.0.clone()))
    }
    fn check(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.0.clone())
    }
}

struct DynamoBackend(Arc<DynamoCatalogStore>);

impl BackendParts for DynamoBackend {
    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(self.0.outbox())
    }
    fn check(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.0.readiness())
    }
}

/// The catalog stores `infra`'s configuration names, waking `signal` after writes with events.
async fn stores(infra: &Infra, signal: OutboxSignal) -> anyhow::Result<Stores> {
    match infra.config.store_backend {
        StoreBackend::Sqlite => {
            let db = infra.open_sqlite(NAME, MIGRATIONS)?;
            Ok((
                Arc::new(SqliteCategoryStore::new(db.clone())),
                Arc::new(SqliteProductStore::new(db.clone()).waking(signal)),
                Arc::new(SqliteBackend(db)),
            ))
        }
        StoreBackend::Dynamodb => {
            let sdk = platform::aws::sdk_config(&infra.config).await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let catalog = DynamoCatalogStore::new(client, &infra.config.dynamodb_table_prefix).waking(signal);
            // On AWS the tables come from the CDK app; against an emulator (moto, LocalStack) we make them.
            if infra.config.aws_endpoint_url.is_some() {
                catalog.create_tables().await.context("cannot create the DynamoDB tables")?;
            }
            let catalog = Arc::new(catalog);
            Ok((catalog.clone(), catalog.clone(), Arc::new(DynamoBackend(catalog))))
        }
    }
}

/// The search index `infra`'s configuration names.
pub fn search_index(infra: &Infra) -> anyhow::Result<Arc<dyn SearchIndex>> {
    let settings: Settings = infra.config.section()?;
    Ok(match settings.search_backend {
        SearchBackend::Tantivy => {
            let dir = infra.config.data_dir.join("search").join("products");
            Arc::new(
                TantivyIndex::open(&dir, settings.search_cache_pages)
                    .with_context(|| format!("cannot open the search index in {}", dir.display()))?
                    .with_cache_bytes(settings.search_cache_bytes),
            )
        }
        SearchBackend::Opensearch => {
            let url = settings.opensearch_url.as_ref().context("SHOP_OPENSEARCH_URL is required")?;
            Arc::new(OpenSearchIndex::new(url, &settings.opensearch_index).context("cannot set up OpenSearch")?)
        }
    })
}

/// Wires the service into a process: stores, outbox relay, search index and its indexer, routes,
/// checks. An empty index over a non-empty catalog (a new index, a changed schema) is rebuilt in the
/// background.
pub async fn build(infra: Infra) -> anyhow::Result<Service> {
    let settings: Settings = infra.config.section()?;
    let signal = OutboxSignal::default();
    let (categories, products, backend) = stores(&infra, signal.clone()).await?;
    infra.spawn_relay(backend.outbox(), &signal);
    let index = search_index(&infra)?;
    index.ensure().await.context("cannot set up the search index")?;
    let tree = Arc::new(TreeCache::new(categories.clone()));
    let state = AppState {
        catalog: Catalog { categories, products },
        index,
        tree,
        pages: Arc::new(PageCache::new()),
        objects: infra.objects.clone(),
        image_max_bytes: settings.image_max_bytes,
        bulk_body_limit: settings.bulk_body_limit_bytes,
        verifier: infra.verifier.clone(),
    };
    let indexer = Indexer::new(state.catalog.products.clone(), state.tree.clone(), state.index.clone())
        .with_pages(state.pages.clone());
    let consumer = Consumer::new(infra.bus.clone(), consumers::QUEUE, Arc::new(indexer)).batch(consumers::BATCH);
    let index_check = state.index.clone();
    let rebuild = state.clone();
    let shutdown = infra.shutdown.clone();
    // The live indexer waits for a rebuild: a page the rebuild read before a delete or a price
    // change and wrote after it would bring the old state back. Its events wait in the queue and
    // are applied after (each re-reads the store), so the index ends in the store's state.
    infra.tasks.spawn(async move {
        if let Err(error) = reindex_if_empty(&rebuild).await {
            tracing::error!(error = %platform::error::cause_chain(&error), "could not rebuild the search index");
        }
        consumer.run(shutdown).await;
    });
    Ok(Service {
        name: NAME,
        router: router(state),
        openapi: api::openapi(),
        checks: vec![backend.check(), Arc::new(SearchCheck(index_check))],
        not_found_page: None,
    })
}

/// `/ready`: the search engine answers.
struct SearchCheck(Arc<dyn SearchIndex>);

#[async_trait::async_trait]
impl ReadinessCheck for SearchCheck {
    fn name(&self) -> &str {
        "search"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| platform::error::cause_chain(&e))
    }
}

async fn reindex_if_empty(state: &AppState) -> Result<(), app::indexer::ReindexError> {
    if state.index.count().await? > 0 || state.catalog.products.count().await? == 0 {
        return Ok(());
    }
    tracing::info!("the search index is empty; rebuilding it from the catalog");
    let indexed = app::indexer::reindex(
        state.catalog.products.as_ref(),
        state.catalog.categories.as_ref(),
        state.index.as_ref(),
        app::indexer::SWEEP_MARGIN,
        |_| {},
    )
    .await?;
    tracing::info!(products = indexed, "search index rebuilt");
    Ok(())
}
