//! The bare references of the hot-path benchmark (`loadtest/catalog/bench.sh`): a plain axum
//! server with no middleware, answering `GET /health` and `GET /v1/products/{id}` from an
//! in-memory map of the generated catalog. What the platform's own figures are held against on the
//! same machine, in the same run.
//!
//! Usage: `bare --port PORT --catalog FILE.ndjson` (the file `shop seed --ndjson` writes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;

/// The platform's allocator (see the `shop` crate), so that the comparison is of the work alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// The port to listen on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// The generated catalog: one product per line, each with its `id`.
    #[arg(long)]
    catalog: PathBuf,
}

type Products = Arc<HashMap<String, Bytes>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text =
        std::fs::read_to_string(&args.catalog).with_context(|| format!("cannot read {}", args.catalog.display()))?;
    let mut products = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let product: serde_json::Value = serde_json::from_str(line).context("a catalog line is not JSON")?;
        let id = product["id"].as_str().context("a catalog line has no id")?.to_owned();
        products.insert(id, Bytes::from(line.to_owned()));
    }
    let app = Router::new()
        .route("/health", get(|| async { ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }))
        .route("/v1/products/{id}", get(product))
        .with_state(Arc::new(products));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn product(State(products): State<Products>, Path(id): Path<String>) -> Response {
    match products.get(&id) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
