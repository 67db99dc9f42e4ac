//! Bulk import: products one a line (NDJSON), each checked as the admin API checks it and written
//! whole or not at all, in batches. A line may carry an `id` (the product is created or replaced
//! under it: re-importing a file updates the catalog) and `images`; without an `id` the product is
//! new. Bad lines are reported with their number and the reason, and write nothing.

use platform::events::Event;
use platform::http::Validator;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::Catalog;
use crate::domain::product::{Product, ProductInput, build};
use crate::store::StoreError;

/// Products written per store batch.
pub const BATCH: usize = 1_000;

/// Line errors reported at most (the count covers all).
pub const MAX_REPORTED: usize = 1_000;

/// Longest line, in bytes.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Why a line was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineError {
    /// The line number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub error: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Products written.
    pub imported: u64,
    /// Lines not imported (the first 1,000).
    pub failed: Vec<LineError>,
    /// Lines not imported in all.
    pub failed_total: u64,
}

/// A failure that stops an import (the lines before it stay imported).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("reading the input")]
    Read(#[source] std::io::Error),
    /// The store failed.
    #[error("writing the catalog")]
    Store(#[from] StoreError),
}

/// Writes products in batches and keeps the report.
pub struct Importer<'a> {
    catalog: &'a Catalog,
    pending: Vec<(u64, Product, Event)>,
    report: ImportReport,
    /// Called with the running count of lines handled after each batch.
    progress: Box<dyn FnMut(u64) + Send + 'a>,
    handled: u64,
}

impl<'a> Importer<'a> {
    /// An importer into `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        Self { catalog, pending: Vec::new(), report: ImportReport::default(), progress: Box::new(|_| {}), handled: 0 }
    }

    /// Reports progress (lines handled) after each batch.
    pub fn with_progress(mut self, progress: impl FnMut(u64) + Send + 'a) -> Self {
        self.progress = Box::new(progress);
        self
    }

    fn fail(&mut self, line: u64, error: String) {
        self.report.failed_total += 1;
        self.handled += 1;
        if self.report.failed.len() < MAX_REPORTED {
            self.report.failed.push(LineError { line, error });
        }
    }

    /// Adds the product of `input` (under `id`, or a new id) from `line`.
    pub async fn add(
        &mut self,
        line: u64,
        id: Option<String>,
        input: ProductInput,
        images: Vec<String>,
    ) -> Result<(), ImportError> {
        let mut v = Validator::new();
        if let Some(id) = &id {
            v.check(platform::sku::is_valid(id), "id", "must be 1-64 letters, digits, '-', '_' or '.'");
        }
        let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let product = build(input, id, images, false, chrono::Utc::now(), &mut v);
        match (v.finish(), product) {
            (Ok(()), Some(product)) => {
                let event = crate::domain::product::upserted(&product, None, false);
                self.pending.push((line, product, event));
                if self.pending.len() >= BATCH {
                    self.flush().await?;
                }
            }
            (Err(error), _) => {
                let problem = error.problem();
                let errors: Vec<String> =
                    problem.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                self.fail(line, errors.join("; "));
            }
            (Ok(()), None) => self.fail(line, "invalid product".into()),
        }
        Ok(())
    }

    /// Adds one NDJSON line (blank lines are skipped).
    pub async fn add_line(&mut self, line: u64, text: &str) -> Result<(), ImportError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        if text.len() > MAX_LINE_BYTES {
            self.fail(line, "line longer than 1 MiB".into());
            return Ok(());
        }
        let mut object: serde_json::Map<String, Value> = match serde_json::from_str(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                self.fail(line, "not a JSON object".into());
                return Ok(());
            }
            Err(error) => {
                self.fail(line, format!("invalid JSON: {error}"));
                return Ok(());
            }
        };
        let id = match object.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            Some(_) => {
                self.fail(line, "id: must be a string".into());
                return Ok(());
            }
        };
        let images = match object.remove("images").map(serde_json::from_value::<Vec<String>>) {
            None => Vec::new(),
            Some(Ok(images)) => images,
            Some(Err(_)) => {
                self.fail(line, "images: must be a list of URLs".into());
                return Ok(());
            }
        };
        let input: ProductInput = match serde_path_to_error::deserialize(Value::Object(object)) {
            Ok(input) => input,
            Err(error) => {
                let path = error.path().to_string();
                self.fail(line, format!("{path}: {}", error.into_inner()));
                return Ok(());
            }
        };
        self.add(line, id, input, images).await
    }

    /// Writes what is pending.
    pub async fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let lines: Vec<u64> = batch.iter().map(|(line, _, _)| *line).collect();
        let outcomes = self.catalog.products.upsert_many(batch.into_iter().map(|(_, p, e)| (p, e)).collect()).await?;
        for (line, outcome) in lines.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    self.report.imported += 1;
                    self.handled += 1;
                }
                Err(StoreError::UnknownCategory(id)) => self.fail(line, format!("category_id: no category {id:?}")),
                Err(StoreError::DuplicateSku(sku)) => self.fail(line, format!("SKU {sku} belongs to another product")),
                Err(other) => return Err(other.into()),
            }
        }
        (self.progress)(self.handled);
        Ok(())
    }

    /// Writes the rest and reports.
    pub async fn finish(mut self) -> Result<ImportReport, ImportError> {
        self.flush().await?;
        self.report.failed.sort_by_key(|f| f.line);
        Ok(self.report)
    }
}

/// Imports NDJSON from `reader`.
pub async fn import_ndjson(
    catalog: &Catalog,
    reader: impl AsyncBufRead + Unpin,
    progress: impl FnMut(u64) + Send,
) -> Result<ImportReport, ImportError> {
    let mut reader = reader;
    let mut importer = Importer::new(catalog).with_progress(progress);
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer).await.map_err(ImportError::Read)? == 0 {
            break;
        }
        number += 1;
        match std::str::from_utf8(&buffer) {
            Ok(text) => importer.add_line(number, text.trim_end_matches(['\n', '\r'])).await?,
            Err(_) => importer.fail(number, "not UTF-8 text".into()),
        }
    }
    importer.finish().await
}
