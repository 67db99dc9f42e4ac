//! The catalog store conformance suite, run against every adapter.
//!
//! Each test is one generic async function over [`Stores`] (the category and product ports and the
//! outbox their writes record events in); `conformance_suite!` instantiates it once per adapter, as
//! `conformance::sqlite::<test>` (a fresh database file) and `conformance::dynamodb::<test>` (fresh
//! tables with a unique prefix on the moto server that `eval "$(scripts/dev-deps)"` starts; without
//! `SHOP_TEST_AWS_ENDPOINT` these skip on a laptop and fail under `CI=true`).

use std::collections::BTreeMap;
use std::sync::Arc;

use platform::events::Event;
use platform::events::outbox::{OutboxStore, SqliteOutbox};
use platform::money::Money;
use serde_json::json;
use shop_product::domain::category::Category;
use shop_product::domain::product::{Product, Variant};
use shop_product::store::dynamodb::DynamoCatalogStore;
use shop_product::store::sqlite::{SqliteCategoryStore, SqliteProductStore};
use shop_product::store::{CategoryStore, ProductStore, StoreError};

/// One adapter's stores, and the outbox their writes record events in.
struct Stores {
    categories: Arc<dyn CategoryStore>,
    products: Arc<dyn ProductStore>,
    outbox: Arc<dyn OutboxStore>,
    /// Keeps the SQLite database's directory alive for the test.
    _dir: Option<tempfile::TempDir>,
}

/// Instantiates each generic test for each adapter.
macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::sqlite_stores()).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(stores) = super::dynamodb_stores().await else { return };
                    super::$test(stores).await;
                }
            )+
        }
    };
}

conformance_suite!(
    a_deliverys_levels_are_recorded_together_in_order_and_each_changed_product_comes_once,
    categories_come_parents_first_and_a_taken_slug_or_an_unknown_parent_is_refused,
    a_product_round_trips_through_insert_replace_and_delete_with_an_event_for_each,
    a_product_in_an_unknown_category_is_refused_and_changes_nothing,
    a_sku_of_another_product_is_refused_and_the_refused_write_changes_nothing,
    upsert_many_writes_each_good_product_whole_and_refuses_each_bad_one,
    scan_visits_every_product_once_in_id_order,
    availability_flips_in_stock_both_ways_even_when_recorded_before_the_product,
    a_level_older_than_the_one_recorded_is_ignored,
    the_seeders_levels_of_many_skus_are_recorded_at_once_and_decide_in_stock,
    count_follows_inserts_moves_and_deletes,
    skus_lead_to_their_products_until_deleted,
    every_write_raises_the_revision_the_index_orders_by,
    a_product_at_the_size_limit_is_stored_and_read_whole,
);

fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let db = platform::sqlite::Db::open(dir.path().join("product.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    db.migrate(shop_product::MIGRATIONS).unwrap();
    Stores {
        categories: Arc::new(SqliteCategoryStore::new(db.clone())),
        products: Arc::new(SqliteProductStore::new(db.clone())),
        outbox: Arc::new(SqliteOutbox(db)),
        _dir: Some(dir),
    }
}

async fn dynamodb_stores() -> Option<Stores> {
    let client = platform::testing::dynamodb_client()?;
    let prefix = format!("t-{}-", uuid::Uuid::new_v4().simple());
    let catalog = DynamoCatalogStore::new(client, &prefix);
    catalog.create_tables().await.unwrap();
    let outbox = Arc::new(catalog.outbox());
    let catalog = Arc::new(catalog);
    Some(Stores { categories: catalog.clone(), products: catalog, outbox, _dir: None })
}

fn category(id: &str, parent: Option<&str>) -> Category {
    Category { id: id.into(), name: id.to_uppercase(), parent_id: parent.map(Into::into), slug: id.into() }
}

/// The tree most tests start from: `electronics` > `phones`, and `books`.
async fn seed_categories(stores: &Stores) {
    for c in [category("electronics", None), category("phones", Some("electronics")), category("books", None)] {
        stores.categories.insert(&c).await.unwrap();
    }
}

/// A product with one variant per SKU, stamped to the millisecond (what the stores keep), out of
/// stock as the stores report a product whose SKUs have no recorded availability.
fn product(id: &str, category_id: &str, skus: &[&str]) -> Product {
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(1_750_000_000_000 + ms).unwrap();
    Product {
        id: id.into(),
        name: format!("Product {id}"),
        description: "A thing.".into(),
        brand: "Acme".into(),
        category_id: category_id.into(),
        price: Money::new(1999, "USD"),
        images: vec![format!("https://cdn.example/{id}.jpg")],
        attributes: BTreeMap::from([("material".to_owned(), json!("steel")), ("weight_g".to_owned(), json!(120))]),
        variants: skus
            .iter()
            .enumerate()
            .map(|(i, sku)| Variant {
                sku: (*sku).into(),
                price: Money::new(1999 + 100 * i as i64, "USD"),
                attributes: BTreeMap::from([("size".to_owned(), json!(i))]),
                // One SKU with a weight and one without: both round-trip.
                weight_grams: (i == 0).then_some(120),
            })
            .collect(),
        tax_category: tax_reduced(),
        in_stock: false,
        created_at: at(1),
        updated_at: at(2),
        revision: 0,
    }
}

/// Not the default category, so a store that dropped it would be caught.
fn tax_reduced() -> platform::contracts::catalog::TaxCategory {
    platform::contracts::catalog::TaxCategory::Reduced
}

fn upserted(product: &Product) -> Event {
    shop_product::domain::product::upserted(product, None, true)
}

fn deleted(id: &str) -> Event {
    Event::new("product.deleted.v1", "product", json!({ "id": id })).with_subject(id)
}

/// The ids of the events waiting in the outbox, oldest first.
async fn outbox_ids(stores: &Stores) -> Vec<String> {
    let events = platform::events::outbox::waiting_events(stores.outbox.as_ref(), false).await.unwrap();
    events.into_iter().map(|event| event.id).collect()
}

fn ids(events: &[&Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

async fn category_ids(stores: &Stores) -> Vec<String> {
    stores.categories.list().await.unwrap().into_iter().map(|c| c.id).collect()
}

async fn categories_come_parents_first_and_a_taken_slug_or_an_unknown_parent_is_refused(stores: Stores) {
    assert!(stores.categories.list().await.unwrap().is_empty());
    seed_categories(&stores).await;
    stores.categories.insert(&category("cases", Some("phones"))).await.unwrap();
    let listed = stores.categories.list().await.unwrap();
    assert_eq!(listed[2], category("phones", Some("electronics")), "categories come back as written");
    assert_eq!(category_ids(&stores).await, ["electronics", "books", "phones", "cases"]);

    let mut taken = category("other", None);
    taken.slug = "phones".into();
    assert!(matches!(stores.categories.insert(&taken).await, Err(StoreError::DuplicateSlug(s)) if s == "phones"));
    let mut orphan = category("orphan", Some("missing"));
    orphan.slug = "orphan-slug".into();
    assert!(matches!(
        stores.categories.insert(&orphan).await,
        Err(StoreError::UnknownParent(p)) if p == "missing"
    ));
    assert_eq!(category_ids(&stores).await, ["electronics", "books", "phones", "cases"], "refusals add nothing");

    // The refused category took neither its id nor its slug.
    let mut again = category("orphan", None);
    again.slug = "orphan-slug".into();
    stores.categories.insert(&again).await.unwrap();
    assert_eq!(category_ids(&stores).await, ["electronics", "books", "orphan", "phones", "cases"]);
}

async fn a_product_round_trips_through_insert_replace_and_delete_with_an_event_for_each(stores: Stores) {
    seed_categories(&stores).await;
    let p = product("p1", "phones", &["P1-A", "P1-B"]);
    let inserted = upserted(&p);
    stores.products.insert(&p, &inserted).await.unwrap();
    assert_eq!(stores.products.get("p1").await.unwrap(), Some(p.clone()));
    assert_eq!(stores.products.get("p2").await.unwrap(), None);
    assert_eq!(outbox_ids(&stores).await, ids(&[&inserted]));

    // A replace that moves the product to another category, renames it and swaps a SKU.
    let mut moved = product("p1", "books", &["P1-A", "P1-C"]);
    moved.name = "Renamed".into();
    moved.brand = "Other".into();
    moved.updated_at = chrono::DateTime::from_timestamp_millis(1_760_000_000_000).unwrap();
    let replaced = upserted(&moved);
    assert!(stores.products.replace(&moved, &replaced).await.unwrap());
    assert_eq!(stores.products.get("p1").await.unwrap(), Some(moved.clone()));
    assert_eq!(stores.products.count().await.unwrap(), 1, "the move leaves no copy behind");
    assert_eq!(stores.products.scan(None, 10).await.unwrap(), [moved.clone()]);
    assert_eq!(outbox_ids(&stores).await, ids(&[&inserted, &replaced]));

    // The SKU the replace dropped is free; the one it kept is not.
    let other = product("p2", "phones", &["P1-B"]);
    let other_event = upserted(&other);
    stores.products.insert(&other, &other_event).await.unwrap();
    let taken = product("p3", "phones", &["P1-C"]);
    assert!(matches!(
        stores.products.insert(&taken, &upserted(&taken)).await,
        Err(StoreError::DuplicateSku(s)) if s == "P1-C"
    ));

    let missing = product("nope", "phones", &["NOPE-1"]);
    assert!(!stores.products.replace(&missing, &upserted(&missing)).await.unwrap());
    assert_eq!(stores.products.get("nope").await.unwrap(), None, "a replace adds nothing");

    let gone = deleted("p1");
    assert!(stores.products.delete("p1", &gone).await.unwrap());
    assert_eq!(stores.products.get("p1").await.unwrap(), None);
    assert!(!stores.products.delete("p1", &deleted("p1")).await.unwrap());
    assert_eq!(outbox_ids(&stores).await, ids(&[&inserted, &replaced, &other_event, &gone]));

    // A deleted product's SKUs are free again.
    let reuse = product("p4", "books", &["P1-A", "P1-C"]);
    stores.products.insert(&reuse, &upserted(&reuse)).await.unwrap();
    assert_eq!(stores.products.get("p4").await.unwrap(), Some(reuse));
}

async fn a_product_in_an_unknown_category_is_refused_and_changes_nothing(stores: Stores) {
    seed_categories(&stores).await;
    let lost = product("p1", "missing", &["P1-A"]);
    assert!(matches!(
        stores.products.insert(&lost, &upserted(&lost)).await,
        Err(StoreError::UnknownCategory(c)) if c == "missing"
    ));
    assert_eq!(stores.products.get("p1").await.unwrap(), None);
    assert_eq!(stores.products.count().await.unwrap(), 0);
    assert!(outbox_ids(&stores).await.is_empty(), "a refused write records no event");

    let p = product("p1", "phones", &["P1-A"]);
    let inserted = upserted(&p);
    stores.products.insert(&p, &inserted).await.unwrap();
    let mut moved = p.clone();
    moved.category_id = "missing".into();
    moved.variants[0].sku = "P1-B".into();
    assert!(matches!(
        stores.products.replace(&moved, &upserted(&moved)).await,
        Err(StoreError::UnknownCategory(c)) if c == "missing"
    ));
    assert_eq!(stores.products.get("p1").await.unwrap(), Some(p));
    assert_eq!(outbox_ids(&stores).await, ids(&[&inserted]));
    // The refused replace claimed nothing.
    let q = product("q", "books", &["P1-B"]);
    stores.products.insert(&q, &upserted(&q)).await.unwrap();
}

async fn a_sku_of_another_product_is_refused_and_the_refused_write_changes_nothing(stores: Stores) {
    seed_categories(&stores).await;
    let a = product("a", "phones", &["A-1", "SHARED"]);
    let a_event = upserted(&a);
    stores.products.insert(&a, &a_event).await.unwrap();

    let b = product("b", "phones", &["B-1", "SHARED"]);
    assert!(matches!(
        stores.products.insert(&b, &upserted(&b)).await,
        Err(StoreError::DuplicateSku(s)) if s == "SHARED"
    ));
    assert_eq!(stores.products.get("b").await.unwrap(), None);
    assert_eq!(outbox_ids(&stores).await, ids(&[&a_event]));

    // The refused insert claimed none of its other SKUs.
    let c = product("c", "books", &["B-1"]);
    let c_event = upserted(&c);
    stores.products.insert(&c, &c_event).await.unwrap();

    // A replace that reaches for another product's SKU (while moving) changes nothing either.
    let mut greedy = product("a", "books", &["A-1", "SHARED", "A-2", "B-1"]);
    greedy.name = "Greedy".into();
    assert!(matches!(
        stores.products.replace(&greedy, &upserted(&greedy)).await,
        Err(StoreError::DuplicateSku(s)) if s == "B-1"
    ));
    assert_eq!(stores.products.get("a").await.unwrap(), Some(a.clone()));
    assert_eq!(outbox_ids(&stores).await, ids(&[&a_event, &c_event]));
    let d = product("d", "books", &["A-2"]);
    stores.products.insert(&d, &upserted(&d)).await.unwrap();

    // Once `a` lets go of SHARED, another product may have it.
    let modest = product("a", "phones", &["A-1"]);
    assert!(stores.products.replace(&modest, &upserted(&modest)).await.unwrap());
    let e = product("e", "phones", &["SHARED"]);
    stores.products.insert(&e, &upserted(&e)).await.unwrap();
    assert_eq!(stores.products.get("e").await.unwrap(), Some(e));
}

async fn upsert_many_writes_each_good_product_whole_and_refuses_each_bad_one(stores: Stores) {
    seed_categories(&stores).await;
    let existing = product("x", "phones", &["X-1"]);
    let existing_event = upserted(&existing);
    stores.products.insert(&existing, &existing_event).await.unwrap();

    let mut renamed = product("x", "books", &["X-1", "X-2"]);
    renamed.name = "Renamed".into();
    let mut items: Vec<Product> =
        (0..20).map(|i| product(&format!("g{i:02}"), "phones", &[&format!("G{i}")])).collect();
    items.insert(3, product("bad-category", "missing", &["BC-1"]));
    items.insert(7, product("bad-sku", "phones", &["BS-1", "X-1"]));
    items.insert(10, renamed.clone());
    // Two items naming one SKU: the first has it, the second is refused, as in a write in order.
    items.push(product("first", "books", &["TWICE"]));
    items.push(product("second", "books", &["TWICE"]));
    let batch: Vec<(Product, Event)> = items.iter().map(|p| (p.clone(), upserted(p))).collect();
    let outcomes = stores.products.upsert_many(batch.clone()).await.unwrap();

    assert_eq!(outcomes.len(), batch.len());
    let mut expected_events = vec![existing_event.id.clone()];
    for ((product, event), outcome) in batch.iter().zip(&outcomes) {
        match product.id.as_str() {
            "bad-category" => assert!(matches!(outcome, Err(StoreError::UnknownCategory(c)) if c == "missing")),
            "bad-sku" => assert!(matches!(outcome, Err(StoreError::DuplicateSku(s)) if s == "X-1")),
            "second" => assert!(matches!(outcome, Err(StoreError::DuplicateSku(s)) if s == "TWICE")),
            id => {
                assert!(outcome.is_ok(), "{id}: {outcome:?}");
                expected_events.push(event.id.clone());
            }
        }
        let stored = stores.products.get(&product.id).await.unwrap();
        match outcome {
            Ok(()) => assert_eq!(stored.as_ref(), Some(product)),
            Err(_) => assert_eq!(stored, None, "{} was refused and wrote nothing", product.id),
        }
    }
    assert_eq!(stores.products.count().await.unwrap(), 22);
    // Concurrent writers may record events out of the batch's order; each good item's, once.
    let mut recorded = outbox_ids(&stores).await;
    recorded.sort();
    expected_events.sort();
    assert_eq!(recorded, expected_events);
    // The refused items claimed none of their other SKUs.
    let free = product("free", "books", &["BC-1", "BS-1"]);
    stores.products.insert(&free, &upserted(&free)).await.unwrap();
}

async fn scan_visits_every_product_once_in_id_order(stores: Stores) {
    seed_categories(&stores).await;
    assert!(stores.products.scan(None, 10).await.unwrap().is_empty());
    let categories = ["electronics", "phones", "books"];
    let mut all: Vec<Product> = (0..25)
        .map(|i| {
            let id = uuid::Uuid::new_v4().to_string();
            let sku = format!("S-{i}");
            product(&id, categories[i % 3], &[&sku])
        })
        .collect();
    let batch = all.iter().map(|p| (p.clone(), upserted(p))).collect();
    assert!(stores.products.upsert_many(batch).await.unwrap().iter().all(Result::is_ok));
    all.sort_by(|a, b| a.id.cmp(&b.id));

    for limit in [1, 6, 25, 100] {
        let mut seen: Vec<Product> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = stores.products.scan(after.as_deref(), limit).await.unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == limit;
            seen.extend(page);
            if !full {
                break;
            }
        }
        assert_eq!(seen, all, "pages of {limit}");
    }
    let from_middle = stores.products.scan(Some(&all[10].id), 3).await.unwrap();
    assert_eq!(from_middle, all[11..14]);
    assert!(stores.products.scan(Some(&all[24].id), 5).await.unwrap().is_empty());
}

async fn the_seeders_levels_of_many_skus_are_recorded_at_once_and_decide_in_stock(stores: Stores) {
    seed_categories(&stores).await;
    let mut none = product("none", "phones", &["NONE-1"]);
    none.in_stock = true;
    stores.products.insert(&none, &upserted(&none)).await.unwrap();
    assert!(!stores.products.get("none").await.unwrap().unwrap().in_stock, "no level yet");
    let levels: Vec<(String, i64)> = [("NONE-1", 4), ("MANY-1", 0), ("MANY-2", 3), ("GONE-1", 0)]
        .iter()
        .map(|(s, n)| ((*s).to_owned(), *n))
        .collect();
    stores.products.set_availabilities(&levels).await.unwrap();
    assert!(stores.products.get("none").await.unwrap().unwrap().in_stock, "an existing product follows its level");
    for (id, skus, stocked) in [("many", &["MANY-1", "MANY-2"][..], true), ("gone", &["GONE-1"][..], false)] {
        let p = product(id, "phones", skus);
        stores.products.insert(&p, &upserted(&p)).await.unwrap();
        assert_eq!(stores.products.get(id).await.unwrap().unwrap().in_stock, stocked, "{id}: recorded before it");
    }
    // Unversioned: any level from the inventory replaces them.
    let out = stores.products.set_availability("MANY-2", 0, 1).await.unwrap().expect("out of stock");
    assert!(!out.in_stock);
    stores.products.set_availabilities(&[]).await.unwrap();
}

async fn availability_flips_in_stock_both_ways_even_when_recorded_before_the_product(stores: Stores) {
    seed_categories(&stores).await;
    assert_eq!(stores.products.set_availability("EARLY", 5, 1).await.unwrap(), None, "no product has it yet");

    // The passed-in `in_stock` is ignored; the recorded level decides.
    let mut p = product("p", "phones", &["EARLY", "LATE"]);
    p.in_stock = false;
    stores.products.insert(&p, &upserted(&p)).await.unwrap();
    let mut expected = p.clone();
    expected.in_stock = true;
    assert_eq!(stores.products.get("p").await.unwrap(), Some(expected.clone()));
    let mut claimed = product("q", "books", &["Q-1"]);
    claimed.in_stock = true;
    stores.products.insert(&claimed, &upserted(&claimed)).await.unwrap();
    assert!(!stores.products.get("q").await.unwrap().unwrap().in_stock);

    assert_eq!(stores.products.set_availability("LATE", 3, 2).await.unwrap(), None, "still in stock");
    assert_eq!(stores.products.set_availability("EARLY", 0, 3).await.unwrap(), None, "LATE still has stock");
    let out = stores.products.set_availability("LATE", 0, 4).await.unwrap().expect("the product went out of stock");
    expected.in_stock = false;
    assert_eq!(out, expected);
    assert_eq!(stores.products.get("p").await.unwrap(), Some(expected.clone()));
    assert_eq!(stores.products.set_availability("LATE", 0, 5).await.unwrap(), None);
    assert_eq!(stores.products.set_availability("LATE", -2, 6).await.unwrap(), None, "oversold is not in stock");
    let back = stores.products.set_availability("LATE", 2, 7).await.unwrap().expect("the product is back in stock");
    expected.in_stock = true;
    assert_eq!(back, expected);
    assert_eq!(stores.products.set_availability("LATE", 7, 8).await.unwrap(), None);

    // A replace that drops LATE: only EARLY (at 0) counts, and LATE no longer moves the product.
    let narrowed = product("p", "books", &["EARLY"]);
    assert!(stores.products.replace(&narrowed, &upserted(&narrowed)).await.unwrap());
    assert!(!stores.products.get("p").await.unwrap().unwrap().in_stock);
    assert_eq!(stores.products.set_availability("LATE", 0, 9).await.unwrap(), None);
    assert_eq!(stores.products.set_availability("LATE", 9, 10).await.unwrap(), None);
    let restocked = stores.products.set_availability("EARLY", 1, 11).await.unwrap().expect("EARLY restocks p");
    assert_eq!(restocked.id, "p");
    assert!(restocked.in_stock);

    // A delete keeps the recorded levels for the SKUs' next product.
    assert!(stores.products.delete("p", &deleted("p")).await.unwrap());
    let r = product("r", "phones", &["LATE"]);
    stores.products.insert(&r, &upserted(&r)).await.unwrap();
    assert!(stores.products.get("r").await.unwrap().unwrap().in_stock);
}

async fn a_deliverys_levels_are_recorded_together_in_order_and_each_changed_product_comes_once(stores: Stores) {
    seed_categories(&stores).await;
    for (id, skus) in [("p", &["P-1", "P-2"][..]), ("q", &["Q-1"][..]), ("r", &["R-1"][..])] {
        let product = product(id, "phones", skus);
        stores.products.insert(&product, &upserted(&product)).await.unwrap();
    }
    let levels = |list: &[(&str, i64, i64)]| -> Vec<(String, i64, i64)> {
        list.iter().map(|(sku, n, v)| ((*sku).to_owned(), *n, *v)).collect()
    };
    // p comes in stock, out (both its SKUs at 0), and in again; q comes in; r's level is older than
    // the one it gets first; a SKU of no product is kept for later.
    let changed = stores
        .products
        .set_availability_many(&levels(&[
            ("P-1", 3, 1),
            ("Q-1", 2, 1),
            ("R-1", 5, 9),
            ("P-1", 0, 2),
            ("R-1", 0, 4),
            ("NOBODY", 1, 1),
            ("P-2", 4, 1),
        ]))
        .await
        .unwrap();
    let mut ids: Vec<(&str, bool)> = changed.iter().map(|p| (p.id.as_str(), p.in_stock)).collect();
    ids.sort();
    assert_eq!(ids, [("p", true), ("q", true), ("r", true)]);
    for id in ["p", "q", "r"] {
        assert!(stores.products.get(id).await.unwrap().unwrap().in_stock, "{id}");
    }
    assert!(stores.products.set_availability_many(&[]).await.unwrap().is_empty());
    // Nothing moves a status: nothing is answered.
    assert!(stores.products.set_availability_many(&levels(&[("Q-1", 7, 2)])).await.unwrap().is_empty());
    let late = product("late", "phones", &["NOBODY"]);
    stores.products.insert(&late, &upserted(&late)).await.unwrap();
    assert!(stores.products.get("late").await.unwrap().unwrap().in_stock, "the level kept for it");
}

async fn a_level_older_than_the_one_recorded_is_ignored(stores: Stores) {
    seed_categories(&stores).await;
    let p = product("p", "phones", &["SKU-1"]);
    stores.products.insert(&p, &upserted(&p)).await.unwrap();
    assert!(stores.products.set_availability("SKU-1", 4, 7).await.unwrap().is_some_and(|p| p.in_stock));
    // Version 5 (out of stock) arrives after version 7 (in stock): it is stale.
    assert_eq!(stores.products.set_availability("SKU-1", 0, 5).await.unwrap(), None);
    assert!(stores.products.get("p").await.unwrap().unwrap().in_stock);
    // An unversioned level never replaces a versioned one; the same version again is harmless.
    assert_eq!(stores.products.set_availability("SKU-1", 0, 0).await.unwrap(), None);
    assert_eq!(stores.products.set_availability("SKU-1", 4, 7).await.unwrap(), None);
    assert!(stores.products.get("p").await.unwrap().unwrap().in_stock);
    let out = stores.products.set_availability("SKU-1", 0, 8).await.unwrap().expect("a newer level applies");
    assert!(!out.in_stock);
}

async fn skus_lead_to_their_products_until_deleted(stores: Stores) {
    seed_categories(&stores).await;
    let p = product("p", "phones", &["P-1", "P-2"]);
    let q = product("q", "books", &["Q-1"]);
    for item in [&p, &q] {
        stores.products.insert(item, &upserted(item)).await.unwrap();
    }
    let skus: Vec<String> = ["P-2", "Q-1", "NONE"].map(String::from).to_vec();
    let owners = stores.products.product_ids_of(&skus).await.unwrap();
    assert_eq!(owners.len(), 2);
    assert_eq!((owners["P-2"].as_str(), owners["Q-1"].as_str()), ("p", "q"));
    // A replace that drops a SKU lets it go; a delete lets them all go.
    let narrowed = product("p", "phones", &["P-1"]);
    stores.products.replace(&narrowed, &upserted(&narrowed)).await.unwrap();
    assert!(!stores.products.product_ids_of(&skus).await.unwrap().contains_key("P-2"));
    stores.products.delete("q", &deleted("q")).await.unwrap();
    assert!(stores.products.product_ids_of(&skus).await.unwrap().is_empty());
}

async fn count_follows_inserts_moves_and_deletes(stores: Stores) {
    seed_categories(&stores).await;
    assert_eq!(stores.products.count().await.unwrap(), 0);
    for (i, category) in ["phones", "books", "electronics"].into_iter().enumerate() {
        let p = product(&format!("p{i}"), category, &[&format!("P{i}")]);
        stores.products.insert(&p, &upserted(&p)).await.unwrap();
    }
    assert_eq!(stores.products.count().await.unwrap(), 3);
    let moved = product("p0", "books", &["P0"]);
    assert!(stores.products.replace(&moved, &upserted(&moved)).await.unwrap());
    // Inserting an existing id replaces it.
    let again = product("p1", "phones", &["P1"]);
    stores.products.insert(&again, &upserted(&again)).await.unwrap();
    assert_eq!(stores.products.get("p1").await.unwrap(), Some(again));
    assert_eq!(stores.products.count().await.unwrap(), 3);
    assert!(stores.products.delete("p2", &deleted("p2")).await.unwrap());
    assert_eq!(stores.products.count().await.unwrap(), 2);
}

/// The search index keeps a product's newest revision only: every write that changes what the
/// index shows (a replace, a stock status flip, a product made again after its delete) must give a
/// higher revision than any before, whichever way it is read.
async fn every_write_raises_the_revision_the_index_orders_by(stores: Stores) {
    seed_categories(&stores).await;
    let p = product("p", "phones", &["P-1"]);
    stores.products.insert(&p, &upserted(&p)).await.unwrap();
    let revision = |product: Option<Product>| product.expect("the product").revision;
    let first = revision(stores.products.get("p").await.unwrap());
    assert!(first > 0, "a write stamps a revision");
    let mut renamed = p.clone();
    renamed.name = "Renamed".into();
    assert!(stores.products.replace(&renamed, &upserted(&renamed)).await.unwrap());
    let second = revision(stores.products.get("p").await.unwrap());
    assert!(second > first, "a replace raises it: {first} then {second}");
    let flipped = stores.products.set_availability("P-1", 3, 1).await.unwrap().expect("in stock now");
    assert!(flipped.revision > second, "a stock status change raises it");
    assert_eq!(revision(stores.products.get("p").await.unwrap()), flipped.revision, "as stored");
    let scanned = stores.products.scan(None, 10).await.unwrap();
    assert_eq!(scanned.iter().find(|x| x.id == "p").map(|x| x.revision), Some(flipped.revision), "scans read it");
    assert_eq!(stores.products.set_availability("P-1", 5, 2).await.unwrap(), None, "no flip, no change");
    assert_eq!(revision(stores.products.get("p").await.unwrap()), flipped.revision);
    let third = {
        assert!(stores.products.replace(&renamed, &upserted(&renamed)).await.unwrap());
        revision(stores.products.get("p").await.unwrap())
    };
    assert!(third > flipped.revision, "a write after a flip is newer than the flip");
    assert!(stores.products.delete("p", &deleted("p")).await.unwrap());
    stores.products.insert(&p, &upserted(&p)).await.unwrap();
    assert!(revision(stores.products.get("p").await.unwrap()) > third, "made again, it outranks its old self");
}

/// The largest product the API lets through fits the store (a DynamoDB item holds 400 KB at most,
/// which moto enforces too), and its event stays small.
async fn a_product_at_the_size_limit_is_stored_and_read_whole(stores: Stores) {
    use shop_product::domain::product::{MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES, MAX_PRODUCT_BYTES, MAX_VARIANTS};
    seed_categories(&stores).await;
    let skus: Vec<String> = (0..MAX_VARIANTS).map(|i| format!("BIG-{i}")).collect();
    let mut big = product("big", "phones", &skus.iter().map(String::as_str).collect::<Vec<_>>());
    big.description = "Ünïcode ".repeat(1_000);
    big.attributes =
        (0..MAX_ATTRIBUTES).map(|a| (format!("a{a:02}"), json!("x".repeat(MAX_ATTRIBUTE_BYTES - 2)))).collect();
    let size = |p: &Product| serde_json::to_vec(p).unwrap().len();
    // Variant attributes fill what is left, up to the limit.
    'fill: for attribute in 0.. {
        for v in 0..big.variants.len() {
            big.variants[v].attributes.insert(format!("v{attribute:02}"), json!("y".repeat(200)));
            if size(&big) > MAX_PRODUCT_BYTES {
                big.variants[v].attributes.remove(&format!("v{attribute:02}"));
                break 'fill;
            }
        }
    }
    assert!(size(&big) > MAX_PRODUCT_BYTES - 300, "the product is at the limit: {} bytes", size(&big));
    let event = upserted(&big);
    assert!(event.to_json().len() < 4 * 1024, "the event names what changed: {} bytes", event.to_json().len());
    stores.products.insert(&big, &event).await.unwrap();
    assert_eq!(stores.products.get("big").await.unwrap(), Some(big.clone()));
    let mut bigger = big.clone();
    bigger.name = "Replaced at the limit".into();
    assert!(stores.products.replace(&bigger, &upserted(&bigger)).await.unwrap());
    assert_eq!(stores.products.get("big").await.unwrap(), Some(bigger));
}
