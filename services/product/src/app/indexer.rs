//! The indexer: keeps the search index following the catalog store. It consumes the catalog's own
//! events (`product.upserted.v1`, `product.deleted.v1`) and the inventory's `inventory.changed.v1`
//! (as a DynamoDB Streams function would on AWS), and rebuilds the whole index on demand.
//!
//! Events are notifications: for a product event the indexer reads the product's current state from
//! the store and indexes that (or removes it when it is gone), so redelivered, duplicated or
//! reordered events all end in the store's state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::events::HandlerError;
use serde::Deserialize;

use crate::domain::category::Category;
use crate::domain::product::Product;
use crate::search::{SearchDoc, SearchError, SearchIndex};
use crate::store::{CategoryStore, ProductStore, StoreError};

/// Products read from the store a page at a time during a reindex.
pub const REINDEX_PAGE: usize = 1_000;

/// How long the category tree is reused before it is read again.
const TREE_TTL: Duration = Duration::from_secs(5);

/// How far a rebuild's sweep stays behind its start: writers on other machines stamp with their own
/// clocks, and a document they wrote after the rebuild began must not be taken for a stray.
pub const SWEEP_MARGIN: Duration = Duration::from_secs(60);

/// Each category's parent, to find a product's category path, and the slugs.
#[derive(Debug, Clone, Default)]
pub struct CategoryTree {
    parents: HashMap<String, Option<String>>,
    slugs: HashMap<String, String>,
}

impl CategoryTree {
    /// The tree of `categories`.
    pub fn new(categories: &[Category]) -> Self {
        Self {
            parents: categories.iter().map(|c| (c.id.clone(), c.parent_id.clone())).collect(),
            slugs: categories.iter().map(|c| (c.slug.clone(), c.id.clone())).collect(),
        }
    }

    /// The id of the category with id or slug `key`.
    pub fn resolve(&self, key: &str) -> Option<&str> {
        match self.parents.get_key_value(key) {
            Some((id, _)) => Some(id.as_str()),
            None => self.slugs.get(key).map(String::as_str),
        }
    }

    /// `category` and its ancestors, nearest first.
    pub fn path(&self, category: &str) -> Vec<String> {
        let mut path = vec![category.to_owned()];
        let mut seen: HashSet<&str> = HashSet::from([category]);
        let mut current = category;
        while let Some(Some(parent)) = self.parents.get(current) {
            if !seen.insert(parent) {
                break;
            }
            path.push(parent.clone());
            current = parent;
        }
        path
    }
}

/// The category tree, read from the store at most every few seconds.
pub struct TreeCache {
    categories: Arc<dyn CategoryStore>,
    cached: Mutex<Option<(Instant, Arc<CategoryTree>)>>,
}

impl TreeCache {
    /// A cache over `categories`.
    pub fn new(categories: Arc<dyn CategoryStore>) -> Self {
        Self { categories, cached: Mutex::new(None) }
    }

    /// The tree, at most a few seconds old.
    pub async fn get(&self) -> Result<Arc<CategoryTree>, StoreError> {
        if let Some((at, tree)) = self.cached.lock().expect("tree lock").as_ref()
            && at.elapsed() < TREE_TTL
        {
            return Ok(tree.clone());
        }
        self.refresh().await
    }

    /// Reads the tree now (after a category change).
    pub async fn refresh(&self) -> Result<Arc<CategoryTree>, StoreError> {
        let tree = Arc::new(CategoryTree::new(&self.categories.list().await?));
        *self.cached.lock().expect("tree lock") = Some((Instant::now(), tree.clone()));
        Ok(tree)
    }
}

/// Applies catalog and stock events to the index.
pub struct Indexer {
    products: Arc<dyn ProductStore>,
    index: Arc<dyn SearchIndex>,
    tree: Arc<TreeCache>,
    pages: Option<Arc<crate::app::pages::PageCache>>,
}

/// The part of `inventory.changed.v1` the index needs.
#[derive(Debug, Deserialize)]
pub(crate) struct StockChange {
    pub(crate) sku: String,
    available: i64,
    /// The SKU's change counter (0 when an event carries none).
    #[serde(default)]
    version: i64,
}

/// The part of a product event the index needs.
#[derive(Deserialize)]
pub(crate) struct ProductRef {
    pub(crate) id: String,
}

fn retry(error: impl std::error::Error + Send + Sync + 'static) -> HandlerError {
    HandlerError::retry(error)
}

impl Indexer {
    /// An indexer of `products` (category paths from `tree`) into `index`.
    pub fn new(products: Arc<dyn ProductStore>, tree: Arc<TreeCache>, index: Arc<dyn SearchIndex>) -> Self {
        Self { products, index, tree, pages: None }
    }

    /// Drops the rendered pages of the products whose stock status it changes.
    pub fn with_pages(mut self, pages: Arc<crate::app::pages::PageCache>) -> Self {
        self.pages = Some(pages);
        self
    }

    async fn docs(&self, products: &[Product]) -> Result<Vec<SearchDoc>, StoreError> {
        let tree = self.tree.get().await?;
        Ok(products.iter().map(|p| SearchDoc::of(p, tree.path(&p.category_id))).collect())
    }

    /// Brings the index entries of `ids` (products) to the store's state, and records `stock`
    /// levels (the newest of each SKU's), indexing the products whose stock status they change.
    pub(crate) async fn apply(&self, ids: Vec<String>, stock: Vec<StockChange>) -> Result<(), HandlerError> {
        // Taken before the store is read: a product found gone was gone at this time, so any copy
        // of it the index is given later (older than this) is refused.
        let read_at = crate::search::stamp();
        let mut seen = HashSet::new();
        let ids: Vec<String> = ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        let mut changed = self.products.get_many(&ids).await.map_err(retry)?;
        let found: HashSet<&str> = changed.iter().map(|p| p.id.as_str()).collect();
        let gone: Vec<String> = ids.iter().filter(|id| !found.contains(id.as_str())).cloned().collect();
        // The newest level of each SKU, in the order the SKUs first came.
        let mut newest: Vec<(String, i64, i64)> = Vec::with_capacity(stock.len());
        let mut at: HashMap<String, usize> = HashMap::with_capacity(stock.len());
        for StockChange { sku, available, version } in stock {
            match at.get(&sku) {
                Some(&i) if newest[i].2 <= version => newest[i] = (sku, available, version),
                Some(_) => {}
                None => {
                    at.insert(sku.clone(), newest.len());
                    newest.push((sku, available, version));
                }
            }
        }
        let skus: Vec<String> = newest.iter().map(|(sku, _, _)| sku.clone()).collect();
        if !newest.is_empty() {
            let flipped = self.products.set_availability_many(&newest).await.map_err(retry)?;
            if let Some(pages) = &self.pages {
                flipped.iter().for_each(|product| pages.forget(&product.id));
            }
            changed.extend(flipped);
            changed = crate::store::last_of_each(changed);
        }
        // Whether or not this delivery changed the store, the products whose stock it is about are
        // indexed as the store has them now unless the index holds that revision already (a status
        // flip raises it): an index write that failed after the store committed (the engine down,
        // a crash between the two) is made good by the redelivery, which finds the store changed
        // already and the index behind it. Most stock changes move no status and write nothing.
        if !skus.is_empty() {
            let owners = self.products.product_ids_of(&skus).await.map_err(retry)?;
            let mut missing: Vec<String> =
                owners.into_values().filter(|id| !changed.iter().any(|p| &p.id == id)).collect();
            missing.sort();
            missing.dedup();
            if !missing.is_empty() {
                let held = self.index.indexed_revisions(&missing).await.map_err(retry)?;
                let behind = self.products.get_many(&missing).await.map_err(retry)?;
                changed.extend(behind.into_iter().filter(|p| held.get(&p.id).is_none_or(|held| *held < p.revision)));
            }
        }
        if !changed.is_empty() {
            let docs = self.docs(&changed).await.map_err(retry)?;
            self.index.upsert(docs).await.map_err(retry)?;
        }
        if !gone.is_empty() {
            self.index.delete(gone, read_at).await.map_err(retry)?;
        }
        Ok(())
    }
}

/// A failure of a reindex.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// Reading the store failed.
    #[error("reading the catalog")]
    Store(#[from] StoreError),
    /// Writing the index failed.
    #[error("writing the index")]
    Search(#[from] SearchError),
}

/// Rebuilds the whole index from the store, a page at a time (memory bounded by the page size),
/// while the index keeps serving and the live indexer keeps writing. Each page is written at the
/// revisions read, which the index refuses where it holds newer state (a product changed or
/// deleted since its page was read). Where the engine rebuilds beside the live index
/// ([`SearchIndex::begin_rebuild`]: OpenSearch), the pages go to a new index that live writes
/// reach too, swapped in whole at the end (dropped if the rebuild fails); elsewhere they are
/// written over the live index, and what the rebuild did not write or see written since it
/// began, less `sweep_margin` for other writers' clocks ([`SWEEP_MARGIN`]), is swept away at the
/// end. Either way no search sees a partly filled index. `progress` hears the running count. The
/// number of products indexed.
pub async fn reindex(
    products: &dyn ProductStore,
    categories: &dyn CategoryStore,
    index: &dyn SearchIndex,
    sweep_margin: Duration,
    progress: impl FnMut(u64),
) -> Result<u64, ReindexError> {
    index.ensure().await?;
    let started = crate::search::stamp();
    match index.begin_rebuild().await? {
        Some(rebuild) => match copy(products, categories, rebuild.target.as_ref(), progress).await {
            Ok(done) => {
                index.finish_rebuild(rebuild).await?;
                Ok(done)
            }
            Err(error) => {
                if let Err(abandon) = index.abandon_rebuild(rebuild).await {
                    tracing::warn!(error = %abandon, "dropping the unfinished index failed");
                }
                Err(error)
            }
        },
        None => {
            let done = copy(products, categories, index, progress).await?;
            let margin = i64::try_from(sweep_margin.as_micros()).unwrap_or(i64::MAX);
            index.sweep(started.saturating_sub(margin)).await?;
            Ok(done)
        }
    }
}

/// Writes every product of the store into `index`, a page at a time.
async fn copy(
    products: &dyn ProductStore,
    categories: &dyn CategoryStore,
    index: &dyn SearchIndex,
    mut progress: impl FnMut(u64),
) -> Result<u64, ReindexError> {
    let tree = CategoryTree::new(&categories.list().await?);
    let mut after: Option<String> = None;
    let mut done = 0;
    loop {
        let page = products.scan(after.as_deref(), REINDEX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let docs: Vec<SearchDoc> = page.iter().map(|p| SearchDoc::of(p, tree.path(&p.category_id))).collect();
        index.upsert(docs).await?;
        done += page.len() as u64;
        progress(done);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use platform::events::{Event, EventHandler};
    use serde_json::json;

    use super::*;
    use crate::search::SearchQuery;
    use crate::search::tantivy::TantivyIndex;
    use crate::store::sqlite::{SqliteCategoryStore, SqliteProductStore};

    struct World {
        products: Arc<dyn ProductStore>,
        categories: Arc<dyn CategoryStore>,
        index: Arc<dyn SearchIndex>,
        indexer: Indexer,
        _dir: tempfile::TempDir,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let db = platform::sqlite::Db::open(dir.path().join("product.db")).unwrap();
        db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
        db.migrate(crate::MIGRATIONS).unwrap();
        let categories: Arc<dyn CategoryStore> = Arc::new(SqliteCategoryStore::new(db.clone()));
        categories.insert(&category("cat-home", None)).await.unwrap();
        categories.insert(&category("cat-kitchen", Some("cat-home"))).await.unwrap();
        let products: Arc<dyn ProductStore> = Arc::new(SqliteProductStore::new(db));
        let index: Arc<dyn SearchIndex> = Arc::new(TantivyIndex::in_memory().unwrap());
        let tree = Arc::new(TreeCache::new(categories.clone()));
        let indexer = Indexer::new(products.clone(), tree, index.clone());
        World { products, categories, index, indexer, _dir: dir }
    }

    fn product(id: &str) -> Product {
        let input = serde_json::from_value(json!({"name": format!("Kettle {id}"), "brand": "Copperleaf",
            "category_id": "cat-kitchen", "price": {"amount": 3900, "currency": "USD"},
            "variants": [{"sku": format!("SKU-{id}")}]}))
        .unwrap();
        let mut v = platform::http::Validator::new();
        crate::domain::product::build(input, id.into(), vec![], false, chrono::Utc::now(), &mut v).unwrap()
    }

    fn upserted(product: &Product) -> Event {
        crate::domain::product::upserted(product, None, true)
    }

    async fn everything(index: &dyn SearchIndex) -> u64 {
        index.search(&SearchQuery { limit: 1, ..SearchQuery::default() }).await.unwrap().total
    }

    #[test]
    fn the_service_routes_catalog_and_stock_events_to_this_queue() {
        let routing = platform::events::Routing::of(crate::consumers::SUBSCRIPTIONS);
        let kinds = [
            crate::domain::product::UPSERTED,
            crate::domain::product::UPSERTED_V1,
            crate::domain::product::DELETED,
            "inventory.changed.v1",
        ];
        for kind in kinds {
            assert_eq!(routing.queues_for(kind).collect::<Vec<_>>(), [crate::consumers::QUEUE], "{kind}");
        }
    }

    #[tokio::test]
    async fn a_reindex_rebuilds_the_whole_index_a_page_at_a_time() {
        let w = world().await;
        let items: Vec<(Product, Event)> = (0..2_345)
            .map(|i| product(&format!("p{i:05}")))
            .map(|p| {
                let e = upserted(&p);
                (p, e)
            })
            .collect();
        assert!(w.products.upsert_many(items).await.unwrap().iter().all(Result::is_ok));
        w.index.upsert(vec![SearchDoc::of(&product("stale"), vec![])]).await.unwrap();
        let mut pages = Vec::new();
        let done =
            reindex(w.products.as_ref(), w.categories.as_ref(), w.index.as_ref(), Duration::ZERO, |n| pages.push(n))
                .await
                .unwrap();
        assert_eq!(done, 2_345);
        assert_eq!(pages, [1_000, 2_000, 2_345], "one page of the store at a time");
        assert_eq!(w.index.count().await.unwrap(), 2_345, "the stale entry is gone");
        let home = SearchQuery { category: Some("cat-home".into()), limit: 1, ..SearchQuery::default() };
        assert_eq!(w.index.search(&home).await.unwrap().total, 2_345, "category paths are indexed");
    }

    #[tokio::test]
    async fn events_bring_the_index_to_the_store_state_whatever_their_order_or_repetition() {
        let w = world().await;
        let kettle = product("k1");
        let created = upserted(&kettle);
        w.products.insert(&kettle, &created).await.unwrap();
        let deleted = Event::new("product.deleted.v1", "product", json!({"id": "k1"}));
        // The delete arrives first (reordered), then the create twice (redelivered): the product
        // exists in the store, so the index has it once.
        let outcomes = w.indexer.handle_batch(&[deleted.clone(), created.clone(), created.clone()]).await;
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(everything(w.index.as_ref()).await, 1);
        w.products.delete("k1", &deleted).await.unwrap();
        w.indexer.handle(&created).await.unwrap();
        assert_eq!(everything(w.index.as_ref()).await, 0, "a create of a deleted product removes it");

        // Stock recorded before the product exists applies once it does.
        let stock = Event::new("inventory.changed.v1", "inventory", json!({"sku": "SKU-k2", "available": 4}));
        w.indexer.handle(&stock).await.unwrap();
        let k2 = product("k2");
        let event = upserted(&k2);
        w.products.insert(&k2, &event).await.unwrap();
        w.indexer.handle(&event).await.unwrap();
        let in_stock = SearchQuery { in_stock: Some(true), limit: 1, ..SearchQuery::default() };
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 1);

        // An event of the first version (the whole product as its payload), left in a queue by an
        // earlier release, is applied as well.
        let k3 = product("k3");
        w.products.insert(&k3, &upserted(&k3)).await.unwrap();
        let v1 = Event::new(crate::domain::product::UPSERTED_V1, "product", &k3).with_subject("k3");
        w.indexer.handle(&v1).await.unwrap();
        assert_eq!(everything(w.index.as_ref()).await, 2);

        let malformed = Event::new("inventory.changed.v1", "inventory", json!({"sku": 5}));
        let outcomes = w.indexer.handle_batch(&[malformed, stock]).await;
        assert!(matches!(outcomes[0], Err(HandlerError::Reject(_))), "a malformed event is dead-lettered");
        assert!(outcomes[1].is_ok(), "and does not hold back the rest");
        let other = Event::new("order.placed.v1", "order", json!({}));
        assert!(w.indexer.handle(&other).await.is_ok(), "other events are ignored");
    }

    /// An index whose next writes fail (the engine down), then work.
    struct Failing {
        inner: Arc<dyn SearchIndex>,
        failures: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl SearchIndex for Failing {
        async fn ensure(&self) -> Result<(), SearchError> {
            self.inner.ensure().await
        }
        async fn upsert(&self, docs: Vec<SearchDoc>) -> Result<(), SearchError> {
            use std::sync::atomic::Ordering;
            if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return Err(SearchError::backend("the engine is down on purpose"));
            }
            self.inner.upsert(docs).await
        }
        async fn delete(&self, ids: Vec<String>, at: i64) -> Result<(), SearchError> {
            self.inner.delete(ids, at).await
        }
        async fn indexed_revisions(&self, ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
            self.inner.indexed_revisions(ids).await
        }
        async fn sweep(&self, before: i64) -> Result<(), SearchError> {
            self.inner.sweep(before).await
        }
        async fn search(&self, query: &SearchQuery) -> Result<crate::search::SearchPage, SearchError> {
            self.inner.search(query).await
        }
        async fn count(&self) -> Result<u64, SearchError> {
            self.inner.count().await
        }
        async fn ping(&self) -> Result<(), SearchError> {
            self.inner.ping().await
        }
    }

    /// An engine that rebuilds beside its live index, as OpenSearch does: a new index (`next`,
    /// which may fail) swapped in at the end.
    struct Beside {
        live: std::sync::RwLock<Arc<dyn SearchIndex>>,
        next: Arc<Failing>,
        abandoned: std::sync::atomic::AtomicBool,
    }

    impl Beside {
        fn live(&self) -> Arc<dyn SearchIndex> {
            self.live.read().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl SearchIndex for Beside {
        async fn ensure(&self) -> Result<(), SearchError> {
            self.live().ensure().await
        }
        async fn upsert(&self, docs: Vec<SearchDoc>) -> Result<(), SearchError> {
            self.live().upsert(docs).await
        }
        async fn delete(&self, ids: Vec<String>, at: i64) -> Result<(), SearchError> {
            self.live().delete(ids, at).await
        }
        async fn sweep(&self, _before: i64) -> Result<(), SearchError> {
            panic!("an index rebuilt beside is never swept")
        }
        async fn search(&self, query: &SearchQuery) -> Result<crate::search::SearchPage, SearchError> {
            self.live().search(query).await
        }
        async fn count(&self) -> Result<u64, SearchError> {
            self.live().count().await
        }
        async fn ping(&self) -> Result<(), SearchError> {
            Ok(())
        }
        async fn begin_rebuild(&self) -> Result<Option<crate::search::Rebuild>, SearchError> {
            Ok(Some(crate::search::Rebuild { name: "next".into(), target: self.next.clone() }))
        }
        async fn finish_rebuild(&self, rebuild: crate::search::Rebuild) -> Result<(), SearchError> {
            assert_eq!(rebuild.name, "next");
            *self.live.write().unwrap() = self.next.inner.clone();
            Ok(())
        }
        async fn abandon_rebuild(&self, _rebuild: crate::search::Rebuild) -> Result<(), SearchError> {
            self.abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_rebuild_beside_the_live_index_is_swapped_in_whole_or_dropped_when_it_fails() {
        let w = world().await;
        let items: Vec<(Product, Event)> = (0..1_500)
            .map(|i| product(&format!("p{i:05}")))
            .map(|p| {
                let e = upserted(&p);
                (p, e)
            })
            .collect();
        assert!(w.products.upsert_many(items).await.unwrap().iter().all(Result::is_ok));
        let old: Arc<dyn SearchIndex> = Arc::new(TantivyIndex::in_memory().unwrap());
        old.upsert(vec![SearchDoc::of(&product("gone"), vec![])]).await.unwrap();

        // The new index fails on its second page: the rebuild stops, its index is dropped, and
        // searches kept (and keep) the old index whole.
        let next = Arc::new(Failing { inner: Arc::new(TantivyIndex::in_memory().unwrap()), failures: 0.into() });
        let engine = Beside { live: old.clone().into(), next: next.clone(), abandoned: false.into() };
        next.failures.store(1, std::sync::atomic::Ordering::SeqCst);
        let mut pages = Vec::new();
        let failed = reindex(w.products.as_ref(), w.categories.as_ref(), &engine, Duration::ZERO, |n| pages.push(n));
        assert!(failed.await.is_err());
        assert!(engine.abandoned.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(engine.count().await.unwrap(), 1, "the live index is the old one, untouched");

        // Then it works: every product is in the new index, which searches use from the swap on;
        // the old index was never written (what it held that the store lacks went with it).
        let next = Arc::new(Failing { inner: Arc::new(TantivyIndex::in_memory().unwrap()), failures: 0.into() });
        let engine = Beside { live: old.clone().into(), next: next.clone(), abandoned: false.into() };
        let mut pages = Vec::new();
        let done = reindex(w.products.as_ref(), w.categories.as_ref(), &engine, Duration::ZERO, |n| pages.push(n));
        assert_eq!(done.await.unwrap(), 1_500);
        assert_eq!(pages, [1_000, 1_500]);
        assert_eq!(engine.count().await.unwrap(), 1_500);
        assert_eq!(old.count().await.unwrap(), 1, "the rebuild wrote only the new index");
        let home = SearchQuery { category: Some("cat-home".into()), limit: 1, ..SearchQuery::default() };
        assert_eq!(engine.search(&home).await.unwrap().total, 1_500);
    }

    #[tokio::test]
    async fn a_stock_change_whose_index_write_failed_is_indexed_on_redelivery() {
        let w = world().await;
        let failing = Arc::new(Failing { inner: w.index.clone(), failures: Default::default() });
        let indexer = Indexer::new(w.products.clone(), Arc::new(TreeCache::new(w.categories.clone())), failing.clone());
        let k = product("k1");
        let event = upserted(&k);
        w.products.insert(&k, &event).await.unwrap();
        indexer.handle(&event).await.unwrap();
        let in_stock = SearchQuery { in_stock: Some(true), limit: 1, ..SearchQuery::default() };
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 0);
        // The store records the stock; the index write fails: the event is retried.
        let stock =
            Event::new("inventory.changed.v1", "inventory", json!({"sku": "SKU-k1", "available": 4, "version": 1}));
        failing.failures.store(1, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(indexer.handle(&stock).await, Err(HandlerError::Retry(_))));
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 0, "not indexed yet");
        // Redelivered, it finds the store changed already, and indexes the product anyway.
        indexer.handle(&stock).await.unwrap();
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 1, "search shows it in stock");

        // A level that moves no status writes nothing (a write would fail here), nor does the
        // redelivery of one that did, once indexed.
        failing.failures.store(1, std::sync::atomic::Ordering::SeqCst);
        let fewer =
            Event::new("inventory.changed.v1", "inventory", json!({"sku": "SKU-k1", "available": 3, "version": 2}));
        indexer.handle(&fewer).await.unwrap();
        indexer.handle(&stock).await.unwrap();
        assert_eq!(failing.failures.load(std::sync::atomic::Ordering::SeqCst), 1, "the index was not written");
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 1);
        // The one that empties it is written.
        let none =
            Event::new("inventory.changed.v1", "inventory", json!({"sku": "SKU-k1", "available": 0, "version": 3}));
        failing.failures.store(0, std::sync::atomic::Ordering::SeqCst);
        indexer.handle(&none).await.unwrap();
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 0, "out of stock now");
    }

    #[tokio::test]
    async fn stock_levels_that_arrive_out_of_order_never_replace_newer_ones() {
        let w = world().await;
        let k = product("k1");
        let event = upserted(&k);
        w.products.insert(&k, &event).await.unwrap();
        w.indexer.handle(&event).await.unwrap();
        let level = |available: i64, version: i64| {
            Event::new(
                "inventory.changed.v1",
                "inventory",
                json!({"sku": "SKU-k1", "available": available, "on_hand": available, "reserved": 0, "version": version}),
            )
        };
        let in_stock = SearchQuery { in_stock: Some(true), limit: 1, ..SearchQuery::default() };
        // In one batch, newest first: the older level is dropped.
        let outcomes = w.indexer.handle_batch(&[level(3, 2), level(0, 1)]).await;
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 1);
        // Across batches: a late, older "out of stock" changes nothing.
        w.indexer.handle(&level(0, 1)).await.unwrap();
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 1);
        w.indexer.handle(&level(0, 3)).await.unwrap();
        assert_eq!(w.index.search(&in_stock).await.unwrap().total, 0);
    }

    /// A store whose next scan, once armed, stops after reading its page until let go: a rebuild
    /// whose page is read before live changes and written after them.
    struct PausedScan {
        inner: Arc<dyn ProductStore>,
        armed: std::sync::atomic::AtomicBool,
        read: tokio::sync::Notify,
        go: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl ProductStore for PausedScan {
        async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
            self.inner.get(id).await
        }
        async fn product_ids_of(&self, skus: &[String]) -> Result<HashMap<String, String>, StoreError> {
            self.inner.product_ids_of(skus).await
        }
        async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError> {
            self.inner.insert(product, event).await
        }
        async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError> {
            self.inner.replace(product, event).await
        }
        async fn delete(&self, id: &str, event: &Event) -> Result<bool, StoreError> {
            self.inner.delete(id, event).await
        }
        async fn upsert_many(&self, items: Vec<(Product, Event)>) -> Result<Vec<Result<(), StoreError>>, StoreError> {
            self.inner.upsert_many(items).await
        }
        async fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<Product>, StoreError> {
            let page = self.inner.scan(after, limit).await?;
            if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.read.notify_one();
                self.go.notified().await;
            }
            Ok(page)
        }
        async fn set_availability(
            &self,
            sku: &str,
            available: i64,
            version: i64,
        ) -> Result<Option<Product>, StoreError> {
            self.inner.set_availability(sku, available, version).await
        }
        async fn count(&self) -> Result<u64, StoreError> {
            self.inner.count().await
        }
    }

    #[tokio::test]
    async fn a_rebuild_racing_live_deletes_and_price_changes_never_brings_old_state_back() {
        let w = world().await;
        for id in ["a", "b", "c"] {
            let p = product(id);
            let event = upserted(&p);
            w.products.insert(&p, &event).await.unwrap();
            w.indexer.handle(&event).await.unwrap();
        }
        // A document no product of the store has (a lost delete, long ago).
        w.index.upsert(vec![SearchDoc::of(&product("ghost"), vec![])]).await.unwrap();
        let paused = Arc::new(PausedScan {
            inner: w.products.clone(),
            armed: true.into(),
            read: Default::default(),
            go: Default::default(),
        });
        let rebuild = tokio::spawn({
            let (paused, categories, index) = (paused.clone(), w.categories.clone(), w.index.clone());
            async move { reindex(paused.as_ref(), categories.as_ref(), index.as_ref(), Duration::ZERO, |_| {}).await }
        });
        // The rebuild has read its page (a, b, c as they were); the live indexer applies a delete,
        // a price change and a stock change before the page is written.
        paused.read.notified().await;
        let gone = crate::domain::product::deleted("b");
        assert!(w.products.delete("b", &gone).await.unwrap());
        w.indexer.handle(&gone).await.unwrap();
        let mut dearer = product("c");
        dearer.price.amount = 5_000;
        dearer.variants[0].price.amount = 5_000;
        let changed = upserted(&dearer);
        assert!(w.products.replace(&dearer, &changed).await.unwrap());
        w.indexer.handle(&changed).await.unwrap();
        let stock =
            Event::new("inventory.changed.v1", "inventory", json!({"sku": "SKU-a", "available": 2, "version": 1}));
        w.indexer.handle(&stock).await.unwrap();
        paused.go.notify_one();
        assert_eq!(rebuild.await.unwrap().unwrap(), 3, "the page had three products");

        let all = w.index.search(&SearchQuery { limit: 10, ..SearchQuery::default() }).await.unwrap();
        let mut found: Vec<(&str, i64, bool)> =
            all.items.iter().map(|item| (item.id.as_str(), item.price.amount, item.in_stock)).collect();
        found.sort();
        assert_eq!(
            found,
            [("a", 3_900, true), ("c", 5_000, false)],
            "b stays deleted, c keeps its new price, a its stock; the stray is swept"
        );
    }

    fn category(id: &str, parent: Option<&str>) -> Category {
        Category { id: id.into(), name: id.into(), parent_id: parent.map(Into::into), slug: id.into() }
    }

    #[test]
    fn paths_go_up_and_keys_resolve_by_id_or_slug() {
        let tree = CategoryTree::new(&[
            category("fashion", None),
            category("shoes", Some("fashion")),
            category("boots", Some("shoes")),
            category("home", None),
        ]);
        assert_eq!(tree.path("boots"), ["boots", "shoes", "fashion"]);
        assert_eq!(tree.path("unknown"), ["unknown"]);
        assert_eq!(tree.resolve("boots"), Some("boots"));
        let hats = Category { id: "cat-hats".into(), name: "Hats".into(), parent_id: None, slug: "hats".into() };
        assert_eq!(CategoryTree::new(&[hats]).resolve("hats"), Some("cat-hats"));
        assert_eq!(tree.resolve("unknown"), None);
    }
}
