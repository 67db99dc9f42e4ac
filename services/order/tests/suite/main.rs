//! The order service's integration tests: the cart and order store conformance suites, each run
//! on SQLite (a fresh database file), on DynamoDB (fresh tables with a unique prefix on the moto
//! server that `eval "$(scripts/dev-deps)"` starts; without `SHOP_TEST_AWS_ENDPOINT` these skip
//! on a laptop and fail under `CI=true`), and, for carts, through the cache in front of each: the
//! in-process cache before SQLite (the embedded mode), Redis (`SHOP_TEST_REDIS_URL`) before
//! DynamoDB (the local stack and AWS).

mod carts;
mod orders;
mod pricing;

use std::sync::Arc;

use platform::cache::Cache;
use platform::cache::memory::MemoryCache;
use platform::cache::redis::RedisCache;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use shop_order::store::cached::CachedCarts;
use shop_order::store::dynamodb::DynamoOrderStore;
use shop_order::store::sqlite::SqliteCartStore;
use shop_order::store::sqlite::{SqliteOrderStore, SqlitePricingStore};
use shop_order::store::{CartStore, OrderStore, PricingStore};

/// One adapter's stores and the outbox their writes record events in.
pub struct Stores {
    pub carts: Arc<dyn CartStore>,
    pub orders: Arc<dyn OrderStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub pricing: Arc<dyn PricingStore>,
    /// Keeps the SQLite database's directory alive for the test.
    _dir: Option<tempfile::TempDir>,
}

impl Stores {
    /// The same stores, with the carts read through `cache`.
    pub fn cached(self, cache: Arc<dyn Cache>) -> Self {
        Self { carts: Arc::new(CachedCarts::new(self.carts, cache)), ..self }
    }
}

/// The in-process cache.
pub fn memory_cache() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::new(10_000))
}

/// A fresh namespace of the test Redis.
pub async fn redis_cache() -> Option<Arc<dyn Cache>> {
    let url = platform::testing::server_env("SHOP_TEST_REDIS_URL")?;
    let prefix = format!("order-test:{}:", uuid::Uuid::new_v4().simple());
    Some(Arc::new(RedisCache::connect(&url, prefix).await.unwrap()))
}

/// Instantiates each generic test `$test(stores)` for each adapter: `sqlite::$test`,
/// `dynamodb::$test`, and with `cached:`, `cached_sqlite::$test` (in-process cache) and
/// `cached_dynamodb::$test` (Redis).
#[macro_export]
macro_rules! conformance_suite {
    (@adapters $($test:ident),+) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($crate::sqlite_stores()).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(stores) = $crate::dynamodb_stores().await else { return };
                    super::$test(stores).await;
                }
            )+
        }
    };
    (cached: $($test:ident),+ $(,)?) => {
        $crate::conformance_suite!(@adapters $($test),+);

        mod cached_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($crate::sqlite_stores().cached($crate::memory_cache())).await;
                }
            )+
        }

        mod cached_dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(stores) = $crate::dynamodb_stores().await else { return };
                    let Some(cache) = $crate::redis_cache().await else { return };
                    super::$test(stores.cached(cache)).await;
                }
            )+
        }
    };
    ($($test:ident),+ $(,)?) => {
        $crate::conformance_suite!(@adapters $($test),+);
    };
}

pub fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("order.db"), shop_order::MIGRATIONS).unwrap();
    Stores {
        carts: Arc::new(SqliteCartStore::new(db.clone())),
        orders: Arc::new(SqliteOrderStore::new(db.clone())),
        pricing: Arc::new(SqlitePricingStore::new(db.clone())),
        outbox: Arc::new(SqliteOutbox(db)),
        _dir: Some(dir),
    }
}

pub async fn dynamodb_stores() -> Option<Stores> {
    let client = platform::testing::dynamodb_client()?;
    let store = DynamoOrderStore::new(client, &format!("t-{}-", uuid::Uuid::new_v4().simple()));
    store.create_tables().await.unwrap();
    Some(Stores {
        outbox: Arc::new(store.outbox()),
        carts: Arc::new(store.clone()),
        pricing: Arc::new(store.clone()),
        orders: Arc::new(store),
        _dir: None,
    })
}

/// The kinds of the events in the outbox, oldest first, taking them out.
pub async fn drained(outbox: &dyn OutboxStore) -> Vec<String> {
    let events = platform::events::outbox::waiting_events(outbox, true).await.unwrap();
    events.into_iter().map(|event| event.kind).collect()
}
