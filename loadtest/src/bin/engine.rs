//! The search engine's own rate, for the hot-path benchmark (`loadtest/catalog/bench.sh`): the
//! searches of a file of request paths (`/v1/products?q=…`), parsed once as the API parses them,
//! run straight on the product service's index in a data dir — no HTTP, no middleware, no JSON, and
//! no page cache — on `--threads` threads for `--seconds`. Prints searches per second and the mean
//! time of one. Run it while no `shop up` uses the data dir.
//!
//! Usage: `engine --data-dir DIR --searches FILE [--seconds 20] [--threads 2]`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use platform::config::Config;
use platform::infra::Infra;
use shop_product::api::search::SearchParams;
use shop_product::app::indexer::CategoryTree;
use shop_product::search::SearchQuery;

/// The platform's allocator (see the `shop` crate), so that the comparison is of the work alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// The data dir of a stopped `shop up`.
    #[arg(long)]
    data_dir: PathBuf,
    /// Request paths, one per line (`#` starts a comment).
    #[arg(long)]
    searches: PathBuf,
    /// How long to run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Threads searching at once (the benchmark's machine's cores).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(&[shop_product::settings::SECTION])?;
    config.data_dir = args.data_dir.clone();
    config.set("search_cache_pages", 0);
    let infra = Infra::build(config, platform::events::Routing::default()).await?;
    let catalog = shop_product::open_catalog(&infra).await?;
    let tree = CategoryTree::new(&catalog.categories.list().await?);
    let index = shop_product::search_index(&infra)?;
    let text =
        std::fs::read_to_string(&args.searches).with_context(|| format!("cannot read {}", args.searches.display()))?;
    let mut queries: Vec<SearchQuery> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (_, query) = line.split_once('?').unwrap_or((line, ""));
        let params: SearchParams = serde_urlencoded::from_str(query).with_context(|| format!("cannot read {line}"))?;
        queries.push(params.into_query(&tree).map_err(|e| anyhow::anyhow!("{line}: {e:?}"))?);
    }
    anyhow::ensure!(!queries.is_empty(), "no searches in {}", args.searches.display());
    for query in &queries {
        index.search(query).await?;
    }
    let queries = Arc::new(queries);
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run_for = Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for worker in 0..args.threads {
        let (index, queries, count) = (index.clone(), queries.clone(), count.clone());
        // The searches keep the workers busy (they may never yield): each watches the clock itself.
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while started.elapsed() < run_for {
                index.search(&queries[n % queries.len()]).await.expect("a search");
                n += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let searches = count.load(Ordering::Relaxed) as f64;
    println!(
        "engine: {:.0} searches/s on {} threads, {:.0} µs of a thread each",
        searches / elapsed,
        args.threads,
        elapsed * args.threads as f64 / searches * 1e6
    );
    Ok(())
}
