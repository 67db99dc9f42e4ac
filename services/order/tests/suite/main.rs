//! The order service's integration tests: the cart and order store conformance suites, each run
//! on SQLite (a fresh database file), on DynamoDB (fresh tables with a unique prefix on the moto
//! server that `eval "$(scripts/dev-deps)"` starts; without `SHOP_TEST_AWS_ENDPOINT` these skip
//! on a laptop and fail under `CI=true`), and, for carts, through the cache in front of each.

mod carts;
mod orders;

use std::sync::Arc;

use platform::cache::memory::MemoryCache;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use shop_order::store::cached::CachedCarts;
use shop_order::store::dynamodb::DynamoOrders;
use shop_order::store::orders::SqliteOrderStore;
use shop_order::store::sqlite::SqliteCartStore;
use shop_order::store::{CartStore, OrderStore};

/// One adapter's stores and the outbox their writes record events in.
pub struct Stores {
    pub carts: Arc<dyn CartStore>,
    pub orders: Arc<dyn OrderStore>,
    pub outbox: Arc<dyn OutboxStore>,
    /// Keeps the SQLite database's directory alive for the test.
    _dir: Option<tempfile::TempDir>,
}

impl Stores {
    /// The same stores, with the carts read through an in-process cache.
    pub fn cached(self) -> Self {
        let carts = Arc::new(CachedCarts::new(self.carts, Arc::new(MemoryCache::new(10_000))));
        Self { carts, ..self }
    }
}

/// Instantiates each generic test `$test(stores)` for each adapter: `sqlite::$test`,
/// `dynamodb::$test`, and with `cached`, `cached_sqlite::$test` and `cached_dynamodb::$test`.
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
                    super::$test($crate::sqlite_stores().cached()).await;
                }
            )+
        }

        mod cached_dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(stores) = $crate::dynamodb_stores().await else { return };
                    super::$test(stores.cached()).await;
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
        outbox: Arc::new(SqliteOutbox(db)),
        _dir: Some(dir),
    }
}

pub async fn dynamodb_stores() -> Option<Stores> {
    let client = platform::testing::dynamodb_client()?;
    let store = DynamoOrders::new(client, &format!("t-{}-", uuid::Uuid::new_v4().simple()));
    store.create_tables().await.unwrap();
    Some(Stores {
        outbox: Arc::new(store.outbox()),
        carts: Arc::new(store.clone()),
        orders: Arc::new(store),
        _dir: None,
    })
}

/// The kinds of the events in the outbox, oldest first, taking them out.
pub async fn drained(outbox: &dyn OutboxStore) -> Vec<String> {
    let rows = outbox.fetch(100).await.unwrap();
    let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
    outbox.delete(&seqs).await.unwrap();
    rows.iter().map(|(_, body)| platform::events::Event::from_json(body).unwrap().kind).collect()
}
