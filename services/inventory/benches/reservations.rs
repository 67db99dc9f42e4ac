//! Reservation throughput of the embedded (SQLite) inventory store: the saga's reserve + commit per
//! order, many orders at once, over a spread catalog and over one hot SKU.
//!
//! `cargo bench -p shop-inventory --bench reservations` (set `ORDERS` and `CONCURRENCY` to change
//! the load). Prints orders per second and the latency percentiles of each step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use platform::contracts::inventory::Line;
use shop_inventory::store::InventoryStore;
use shop_inventory::store::sqlite::SqliteInventoryStore;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, orders: usize, elapsed: Duration, mut reserve: Vec<Duration>, mut commit: Vec<Duration>) {
    reserve.sort_unstable();
    commit.sort_unstable();
    println!(
        "{name}: {orders} orders in {:.2} s = {:.0} orders/s (reserve + commit); reserve p50 {:.2} ms p99 {:.2} ms; commit p50 {:.2} ms p99 {:.2} ms",
        elapsed.as_secs_f64(),
        orders as f64 / elapsed.as_secs_f64(),
        percentile(&reserve, 0.5).as_secs_f64() * 1e3,
        percentile(&reserve, 0.99).as_secs_f64() * 1e3,
        percentile(&commit, 0.5).as_secs_f64() * 1e3,
        percentile(&commit, 0.99).as_secs_f64() * 1e3,
    );
}

/// Runs `orders` orders, `concurrency` at a time, each reserving the lines `lines(i)` and committing.
async fn run(
    name: &str,
    store: Arc<dyn InventoryStore>,
    orders: usize,
    concurrency: usize,
    lines: impl Fn(usize) -> Vec<Line> + Send + Sync + 'static,
) {
    let lines = Arc::new(lines);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (store, lines, next) = (store.clone(), lines.clone(), next.clone());
            let name = name.to_owned();
            tokio::spawn(async move {
                let (mut reserve, mut commit) = (Vec::new(), Vec::new());
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= orders {
                        return (reserve, commit);
                    }
                    let order = format!("{name}-{i}");
                    let t = Instant::now();
                    let held = store.reserve(&order, &lines(i), Utc::now() + chrono::Duration::minutes(15), None).await;
                    reserve.push(t.elapsed());
                    assert!(held.expect("reserve").changed);
                    let t = Instant::now();
                    store.commit(&order, None).await.expect("commit");
                    commit.push(t.elapsed());
                }
            })
        })
        .collect();
    let (mut reserve, mut commit) = (Vec::new(), Vec::new());
    for worker in workers {
        let (r, c) = worker.await.expect("a worker");
        reserve.extend(r);
        commit.extend(c);
    }
    report(name, orders, started.elapsed(), reserve, commit);
}

fn main() {
    let orders = env("ORDERS", 20_000);
    let concurrency = env("CONCURRENCY", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let (db, _) = platform::sqlite::Db::open_migrated(dir.path().join("inventory.db"), shop_inventory::MIGRATIONS)
            .expect("the database");
        let store: Arc<dyn InventoryStore> = Arc::new(SqliteInventoryStore::new(db));
        let skus: Vec<(String, i64)> = (0..1_000).map(|i| (format!("SKU-{i:04}"), 1_000_000)).collect();
        store.set_many(&skus, "bench", "bench").await.expect("stock");
        store.set("HOT", 10_000_000, None, "bench", "bench").await.expect("stock");
        println!("SQLite inventory, {orders} orders, {concurrency} at a time");
        run("spread", store.clone(), orders, concurrency, |i| {
            vec![
                Line { sku: format!("SKU-{:04}", i * 7 % 1_000), quantity: 1 },
                Line { sku: format!("SKU-{:04}", (i * 13 + 500) % 1_000), quantity: 2 },
            ]
        })
        .await;
        run("hot", store.clone(), orders, concurrency, |_| vec![Line { sku: "HOT".into(), quantity: 1 }]).await;
        let hot = store.get("HOT").await.expect("read").expect("HOT");
        assert_eq!((hot.on_hand, hot.reserved), (10_000_000 - orders as i64, 0), "every unit accounted for");
    });
}
