//! The OpenSearch adapter of the search index: one OpenSearch index holding each [`SearchDoc`] (plus
//! its [`tiebreak`]) under the product id.
//!
//! The index is known by one name (`products`), an alias of the index that holds the documents once
//! a rebuild has run (before that, an index of that name, as earlier versions made it). A rebuild
//! fills a new index beside the live one, which live writes reach as well through a second alias
//! (`products-rebuild`), and swaps the name over to it in one step ([`SearchIndex::begin_rebuild`]).
//!
//! Text search is term-centric like the embedded (Tantivy) adapter: every word of the query must
//! match in one of name, brand or description, with typo tolerance on longer words. Pages continue
//! with `search_after` on the sort value and the tie-breaker, so deep pages cost no more than the
//! first.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use opensearch::auth::Credentials;
use opensearch::http::response::Response;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesExistsParts, IndicesGetAliasParts, IndicesPutMappingParts,
    IndicesPutSettingsParts,
};
use opensearch::params::{Conflicts, Refresh};
use opensearch::{BulkParts, CountParts, DeleteByQueryParts, MgetParts, OpenSearch, SearchParts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Cursor, Facets, MAX_FACET_VALUES, MAX_LIMIT, PRICE_EDGES, Rebuild, SearchDoc, SearchError, SearchIndex, SearchPage,
    SearchQuery, Sort, TOMBSTONE_TTL, price_bucket, stamp, tiebreak,
};

/// Typo tolerance: none below 5 characters, one edit from 5, two from 9.
const FUZZINESS: &str = "AUTO:5,9";

/// Largest bulk request body sent, in bytes: half the smallest domains' `http.max_content_length`
/// (10 MiB), so a request of many large documents is split by size, not by count. A request the
/// domain still refuses as too large (413) is split in two and each half sent again.
pub const MAX_BULK_BYTES: usize = 5 * 1024 * 1024;

/// How long one request may take before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a sweep may take (it deletes documents one by one).
const SWEEP_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a writer trusts what it last learned of a rebuild in progress (whether the rebuild
/// alias exists). A rebuild waits twice this after making its index before it reads the store, so
/// every writer's later writes reach the new index too.
pub const REBUILD_CHECK: Duration = Duration::from_secs(2);

/// The search index in an OpenSearch cluster.
pub struct OpenSearchIndex {
    client: OpenSearch,
    /// The name searches and writes use: an alias (after a rebuild) or the index itself.
    index: String,
    max_bulk_bytes: usize,
    /// Whether writes also go to the index a rebuild is filling (the live index's adapter; a
    /// rebuild's own writes go to its index only).
    follows_rebuilds: bool,
    rebuild_check: Duration,
    /// Whether a rebuild was in progress when last looked up, and when that was.
    rebuilding: Mutex<Option<(Instant, bool)>>,
}

impl fmt::Debug for OpenSearchIndex {
    // The client holds the credentials: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenSearchIndex").field("index", &self.index).finish_non_exhaustive()
    }
}

impl OpenSearchIndex {
    /// An index named `index` on the node at `url` (`http` or `https`; a `user:password@` in it becomes
    /// basic authentication). Connects lazily: nothing is sent until the first call.
    pub fn new(url: &url::Url, index: &str) -> Result<Self, SearchError> {
        if index.is_empty() || index != index.to_lowercase() || index.starts_with(['_', '-', '+']) {
            return Err(SearchError::backend(format!("{index:?} is not an OpenSearch index name")));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SearchError::backend("the OpenSearch URL must be http or https"));
        }
        let mut node = url.clone();
        let credentials = (!node.username().is_empty() || node.password().is_some()).then(|| {
            Credentials::Basic(percent_decoded(node.username()), percent_decoded(node.password().unwrap_or("")))
        });
        // Kept out of the URL so that no error message or log line can carry them.
        if node.set_username("").is_err() || node.set_password(None).is_err() {
            return Err(SearchError::backend("the OpenSearch URL cannot carry credentials"));
        }
        let mut transport =
            TransportBuilder::new(SingleNodeConnectionPool::new(node)).disable_proxy().timeout(REQUEST_TIMEOUT);
        if let Some(credentials) = credentials {
            transport = transport.auth(credentials);
        }
        let transport = transport.build().map_err(SearchError::backend)?;
        Ok(Self {
            client: OpenSearch::new(transport),
            index: index.to_owned(),
            max_bulk_bytes: MAX_BULK_BYTES,
            follows_rebuilds: true,
            rebuild_check: REBUILD_CHECK,
            rebuilding: Mutex::new(None),
        })
    }

    /// The index, trusting what it learned of a rebuild in progress for `check` (tests).
    pub fn with_rebuild_check(mut self, check: Duration) -> Self {
        self.rebuild_check = check;
        self
    }

    /// The alias of the index a rebuild is filling.
    fn rebuild_alias(&self) -> String {
        format!("{}-rebuild", self.index)
    }

    /// The indices an alias names (none when there is no such alias).
    async fn aliased(&self, alias: &str) -> Result<Vec<String>, SearchError> {
        let response = self.client.indices().get_alias(IndicesGetAliasParts::Name(&[alias])).send().await;
        match answer("look up an alias", response).await {
            Ok(body) => Ok(parse::<HashMap<String, Value>>("look up an alias", body)?.into_keys().collect()),
            Err(failure) if failure.status == 404 => Ok(Vec::new()),
            Err(failure) => Err(failure.error),
        }
    }

    /// Whether a rebuild is filling a new index (looked up at most every [`REBUILD_CHECK`]).
    async fn rebuilding(&self) -> Result<bool, SearchError> {
        if !self.follows_rebuilds {
            return Ok(false);
        }
        if let Some((at, known)) = *self.rebuilding.lock().expect("rebuild lock")
            && at.elapsed() < self.rebuild_check
        {
            return Ok(known);
        }
        let known = !self.aliased(&self.rebuild_alias()).await?.is_empty();
        *self.rebuilding.lock().expect("rebuild lock") = Some((Instant::now(), known));
        Ok(known)
    }

    /// Deletes the index `name` (and so its aliases).
    async fn drop_index(&self, name: &str) -> Result<(), SearchError> {
        let response = self.client.indices().delete(IndicesDeleteParts::Index(&[name])).send().await;
        match answer("delete an index", response).await {
            Ok(_) => Ok(()),
            Err(failure) if failure.status == 404 => Ok(()),
            Err(failure) => Err(failure.error),
        }
    }

    /// The index, sending bulk requests of at most `bytes` (a domain with a smaller
    /// `http.max_content_length`, and tests).
    pub fn with_max_bulk_bytes(mut self, bytes: usize) -> Self {
        self.max_bulk_bytes = bytes.max(1);
        self
    }

    /// The settings an index keeps up to date (made with, and set again on an index made before).
    fn kept_settings() -> Value {
        // A deletion's version is remembered this long, refusing older copies of the product.
        json!({ "gc_deletes": format!("{}s", TOMBSTONE_TTL.as_secs()) })
    }

    /// The fields added since the first mapping (added to an index made before them).
    fn added_fields() -> Value {
        json!({
            "revision": { "type": "long" },
            "indexed_at": { "type": "long" }
        })
    }

    /// The settings and mappings the index is created with.
    fn definition() -> Value {
        let mut settings = Self::kept_settings();
        // A catalog fits one shard easily, and one shard scores with one set of term statistics,
        // so relevance does not depend on which shard a product landed in.
        settings["number_of_shards"] = json!(1);
        let mut definition = json!({
            "settings": { "index": settings },
            "mappings": {
                "dynamic": false,
                "properties": {
                    "id": { "type": "keyword" },
                    "name": { "type": "text", "analyzer": "english" },
                    // Brand names are words, not English: not stemmed.
                    "brand": {
                        "type": "text",
                        "analyzer": "standard",
                        "fields": { "keyword": { "type": "keyword" } }
                    },
                    "description": { "type": "text", "analyzer": "english" },
                    "category_id": { "type": "keyword" },
                    "category_path": { "type": "keyword" },
                    "price": { "type": "long" },
                    "currency": { "type": "keyword" },
                    "image": { "type": "keyword", "index": false },
                    "in_stock": { "type": "boolean" },
                    "created_at_ms": { "type": "long" },
                    "tiebreak": { "type": "long" }
                }
            }
        });
        let properties = definition["mappings"]["properties"].as_object_mut().expect("properties");
        properties.extend(Self::added_fields().as_object().expect("fields").clone());
        definition
    }

    /// Gives an index made by an earlier version the fields and settings added since (both
    /// requests are idempotent).
    async fn bring_up_to_date(&self) -> Result<(), SearchError> {
        let response = self
            .client
            .indices()
            .put_mapping(IndicesPutMappingParts::Index(&[&self.index]))
            .body(json!({ "properties": Self::added_fields() }))
            .send()
            .await;
        ok("add fields", response).await?;
        let response = self
            .client
            .indices()
            .put_settings(IndicesPutSettingsParts::Index(&[&self.index]))
            .body(json!({ "index": Self::kept_settings() }))
            .send()
            .await;
        ok("index settings", response).await?;
        Ok(())
    }

    /// Sends the bulk operations `actions` (each a document's NDJSON lines) in requests of at most
    /// `max_bytes`, visible to searches on return, and checks every item. A request answered 413
    /// is split in two and each half sent again; one document alone answered 413 is an error
    /// naming it.
    async fn bulk(&self, operation: &'static str, actions: Vec<BulkAction>) -> Result<(), SearchError> {
        if self.rebuilding().await? {
            // Through the alias, never creating an index: once the rebuild is over (swapped in or
            // dropped) these writes find no alias and are moot, the live name having them.
            self.send(operation, &self.rebuild_alias(), true, actions.clone()).await?;
        }
        self.send(operation, &self.index, false, actions).await
    }

    /// Sends `actions` to `target` in requests of at most `max_bulk_bytes`.
    async fn send(
        &self,
        operation: &'static str,
        target: &str,
        require_alias: bool,
        actions: Vec<BulkAction>,
    ) -> Result<(), SearchError> {
        let mut pending: Vec<Vec<BulkAction>> = Vec::new();
        let mut size = 0;
        for action in actions {
            let bytes = action.bytes();
            if pending.is_empty() || size + bytes > self.max_bulk_bytes {
                pending.push(Vec::new());
                size = 0;
            }
            size += bytes;
            pending.last_mut().expect("a request").push(action);
        }
        pending.reverse();
        while let Some(mut request) = pending.pop() {
            match self.bulk_request(operation, target, require_alias, &request).await {
                Err(failure) if failure.status == 413 && request.len() > 1 => {
                    tracing::warn!(
                        documents = request.len(),
                        "the search engine refused a bulk request as too large; splitting it"
                    );
                    let second = request.split_off(request.len() / 2);
                    pending.push(second);
                    pending.push(request);
                }
                Err(failure) if failure.status == 413 => {
                    return Err(SearchError::backend(OpenSearchError::TooLarge {
                        operation,
                        id: request[0].id.clone(),
                    }));
                }
                Err(failure) => return Err(failure.error),
                Ok(()) => {}
            }
        }
        Ok(())
    }

    /// One bulk request to `target` (an alias that must exist where `require_alias`).
    async fn bulk_request(
        &self,
        operation: &'static str,
        target: &str,
        require_alias: bool,
        actions: &[BulkAction],
    ) -> Result<(), Failure> {
        let lines: Vec<&str> = actions.iter().flat_map(|a| a.lines.iter().map(String::as_str)).collect();
        let mut request = self.client.bulk(BulkParts::Index(target)).refresh(Refresh::WaitFor);
        if require_alias {
            request = request.require_alias(true);
        }
        let response = request.body(lines).send().await;
        let body = answer(operation, response).await?;
        let answer: BulkResponse = parse(operation, body).map_err(|error| Failure { status: 0, kind: None, error })?;
        if !answer.errors {
            return Ok(());
        }
        let mut failed = answer
            .items
            .iter()
            .flat_map(|item| item.iter())
            .filter(|(action, outcome)| !(outcome.succeeded(action) || require_alias && outcome.no_index()))
            .map(|(_, outcome)| outcome);
        let error = match failed.next() {
            Some(first) => OpenSearchError::Items { operation, failed: 1 + failed.count(), first: first.describe() },
            None if answer.items.is_empty() => {
                OpenSearchError::Items { operation, failed: 0, first: "errors reported without items".into() }
            }
            None => return Ok(()),
        };
        Err(Failure { status: 0, kind: None, error: SearchError::backend(error) })
    }

    /// The `_search` request body of `query`, asking for `size` hits.
    fn search_body(query: &SearchQuery, size: usize) -> Value {
        let words: Vec<&str> = query.text.as_deref().unwrap_or("").split_whitespace().collect();
        // One clause a word: each word must match in some field, as on the embedded engine. (A
        // single multi_match would want every word in the same field.) Where an analyzer drops a
        // word entirely (an English stop word), that field matches everything rather than nothing,
        // so stop words do not empty the results.
        let must: Vec<Value> = if words.is_empty() {
            vec![json!({ "match_all": {} })]
        } else {
            let last = words.len() - 1;
            words
                .iter()
                .enumerate()
                .map(|(i, word)| {
                    if query.prefix && i == last {
                        // The word being typed: the start of a word of a name or brand.
                        return json!({ "multi_match": {
                            "query": word,
                            "type": "phrase_prefix",
                            "fields": ["name^3", "brand^2"]
                        }});
                    }
                    json!({ "multi_match": {
                        "query": word,
                        "fields": ["name^3", "brand^2", "description"],
                        "fuzziness": FUZZINESS,
                        "operator": "and",
                        "zero_terms_query": "all"
                    }})
                })
                .collect()
        };
        let mut filter = Vec::new();
        if let Some(category) = &query.category {
            filter.push(json!({ "term": { "category_path": category } }));
        }
        if let Some(brand) = &query.brand {
            filter.push(json!({ "term": { "brand.keyword": brand } }));
        }
        if query.min_price.is_some() || query.max_price.is_some() {
            let mut range = serde_json::Map::new();
            if let Some(min) = query.min_price {
                range.insert("gte".into(), min.into());
            }
            if let Some(max) = query.max_price {
                range.insert("lte".into(), max.into());
            }
            filter.push(json!({ "range": { "price": range } }));
        }
        if let Some(in_stock) = query.in_stock {
            filter.push(json!({ "term": { "in_stock": in_stock } }));
        }

        let (key, order) = sort_key(query.sort, !words.is_empty());
        let mut body = json!({
            "query": { "bool": { "must": must, "filter": filter } },
            "size": size,
            "track_total_hits": true,
            "sort": [{ key: order }, { "tiebreak": "asc" }],
            "aggs": {
                "brand": { "terms": {
                    "field": "brand.keyword",
                    "size": MAX_FACET_VALUES,
                    "order": [{ "_count": "desc" }, { "_key": "asc" }]
                }},
                "category": { "terms": {
                    "field": "category_id",
                    "size": MAX_FACET_VALUES,
                    "order": [{ "_count": "desc" }, { "_key": "asc" }]
                }},
                "price": { "range": { "field": "price", "ranges": price_ranges() } }
            }
        });
        if let Some(after) = query.after {
            // Scores are floats; prices and times are longs, sent as integers so they compare exactly.
            let value = if key == "_score" { json!(after.value) } else { json!(after.value as i64) };
            body["search_after"] = json!([value, after.tiebreak]);
        }
        body
    }
}

/// The first sort key and its order (the tie-breaker, ascending, always follows).
fn sort_key(sort: Sort, has_text: bool) -> (&'static str, &'static str) {
    match sort {
        Sort::Relevance if has_text => ("_score", "desc"),
        Sort::Relevance | Sort::Newest => ("created_at_ms", "desc"),
        Sort::PriceAsc => ("price", "asc"),
        Sort::PriceDesc => ("price", "desc"),
    }
}

/// The `range` aggregation's ranges of [`PRICE_EDGES`] (`to` is exclusive, like the buckets).
fn price_ranges() -> Vec<Value> {
    let mut ranges = Vec::with_capacity(PRICE_EDGES.len() + 1);
    ranges.push(json!({ "to": PRICE_EDGES[0] }));
    ranges.extend(PRICE_EDGES.windows(2).map(|edge| json!({ "from": edge[0], "to": edge[1] })));
    ranges.push(json!({ "from": PRICE_EDGES[PRICE_EDGES.len() - 1] }));
    ranges
}

/// Decodes the `%XX` escapes of a URL's user name or password.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((char::from(*bytes.get(i + 1)?).to_digit(16)?, char::from(*bytes.get(i + 2)?).to_digit(16)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                decoded.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// What went wrong talking to OpenSearch.
#[derive(Debug, thiserror::Error)]
enum OpenSearchError {
    /// The request did not get an answer.
    #[error("OpenSearch {operation}: no answer")]
    Transport {
        operation: &'static str,
        #[source]
        source: opensearch::Error,
    },
    /// A non-2xx answer.
    #[error("OpenSearch {operation}: status {status}{detail}")]
    Status { operation: &'static str, status: u16, detail: String },
    /// A 2xx answer that is not what the API documents.
    #[error("OpenSearch {operation}: unexpected answer")]
    Malformed {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Items of a bulk request failed.
    #[error("OpenSearch {operation}: {failed} items failed, the first: {first}")]
    Items { operation: &'static str, failed: usize, first: String },
    /// One document alone is larger than the domain takes in a request.
    #[error("OpenSearch {operation}: document {id} alone is larger than the domain takes in a request (413)")]
    TooLarge { operation: &'static str, id: String },
}

/// An error answer's body, as far as we use it.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

/// An error's type and reason; old versions and proxies may send a bare string.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorDetail {
    Structured {
        #[serde(rename = "type")]
        kind: Option<String>,
        reason: Option<String>,
    },
    Text(String),
}

impl ErrorDetail {
    fn describe(&self) -> String {
        match self {
            Self::Structured { kind, reason } => match (kind, reason) {
                (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
                (Some(text), None) | (None, Some(text)) => text.clone(),
                (None, None) => "unknown error".into(),
            },
            Self::Text(text) => text.clone(),
        }
    }

    fn kind(&self) -> Option<&str> {
        match self {
            Self::Structured { kind, .. } => kind.as_deref(),
            Self::Text(_) => None,
        }
    }
}

/// A non-2xx answer, with its error type (when the body has one).
struct Failure {
    status: u16,
    kind: Option<String>,
    error: SearchError,
}

/// The body of a 2xx answer to `operation`, or its failure.
async fn answer(operation: &'static str, response: Result<Response, opensearch::Error>) -> Result<Vec<u8>, Failure> {
    let transport = |source| Failure {
        status: 0,
        kind: None,
        error: SearchError::backend(OpenSearchError::Transport { operation, source }),
    };
    let response = response.map_err(transport)?;
    let status = response.status_code();
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        return Ok(body.to_vec());
    }
    let detail = serde_json::from_slice::<ErrorBody>(&body).ok().map(|body| body.error);
    Err(Failure {
        status: status.as_u16(),
        kind: detail.as_ref().and_then(|d| d.kind()).map(str::to_owned),
        error: SearchError::backend(OpenSearchError::Status {
            operation,
            status: status.as_u16(),
            detail: detail.map(|d| format!(" ({})", d.describe())).unwrap_or_default(),
        }),
    })
}

/// The body of a 2xx answer to `operation`; anything else is an error.
async fn ok(operation: &'static str, response: Result<Response, opensearch::Error>) -> Result<Vec<u8>, SearchError> {
    answer(operation, response).await.map_err(|failure| failure.error)
}

/// `body` as the `T` the API documents.
fn parse<T: for<'de> Deserialize<'de>>(operation: &'static str, body: Vec<u8>) -> Result<T, SearchError> {
    serde_json::from_slice(&body)
        .map_err(|source| SearchError::backend(OpenSearchError::Malformed { operation, source }))
}

/// One document's operation in a bulk request: its NDJSON lines (action, and source for an index).
#[derive(Clone)]
struct BulkAction {
    id: String,
    lines: Vec<String>,
}

impl BulkAction {
    fn new(id: &str, lines: &[Value]) -> Self {
        Self { id: id.to_owned(), lines: lines.iter().map(Value::to_string).collect() }
    }

    /// Its size in the request body (each line and its newline).
    fn bytes(&self) -> usize {
        self.lines.iter().map(|line| line.len() + 1).sum()
    }
}

/// A document as indexed: the search document and its tie-breaker.
#[derive(Serialize)]
struct Source<'a> {
    #[serde(flatten)]
    doc: &'a SearchDoc,
    tiebreak: u64,
    /// When it was written ([`super::stamp`]).
    indexed_at: i64,
}

#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    #[serde(default)]
    items: Vec<HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    status: u16,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

impl BulkItem {
    /// Whether the `action` on this item did what was asked: deleting what is not there counts, and
    /// so does a write refused for its version (the index holds a newer state of the product).
    fn succeeded(&self, action: &str) -> bool {
        (200..300).contains(&self.status)
            || (action == "delete" && self.status == 404)
            || (self.status == 409
                && self.error.as_ref().and_then(|e| e.kind()) == Some("version_conflict_engine_exception"))
    }

    /// Whether the item failed because its index (or alias) does not exist.
    fn no_index(&self) -> bool {
        self.status == 404 && self.error.as_ref().and_then(|e| e.kind()) == Some("index_not_found_exception")
    }

    fn describe(&self) -> String {
        format!(
            "{} status {}: {}",
            self.id.as_deref().unwrap_or("?"),
            self.status,
            self.error.as_ref().map_or_else(|| "no reason given".into(), ErrorDetail::describe)
        )
    }
}

#[derive(Deserialize)]
struct CountResponse {
    count: u64,
}

/// What `_mget` answers of each id asked.
#[derive(Deserialize)]
struct MgetResponse {
    docs: Vec<MgetDoc>,
}

#[derive(Deserialize)]
struct MgetDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    found: bool,
    /// The external version: the product's revision.
    #[serde(rename = "_version")]
    version: Option<i64>,
}

#[derive(Deserialize)]
struct DeleteByQueryResponse {
    #[serde(default)]
    failures: Vec<Value>,
}

#[derive(Deserialize)]
struct SearchResponse {
    hits: Hits,
    aggregations: Option<Aggregations>,
}

#[derive(Deserialize)]
struct Hits {
    total: Option<Total>,
    hits: Vec<Hit>,
}

#[derive(Deserialize)]
struct Total {
    value: u64,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "_source")]
    source: SearchDoc,
    #[serde(default)]
    sort: Vec<Value>,
}

impl Hit {
    /// The cursor after this hit: its first sort value and its tie-breaker.
    fn cursor(&self) -> Option<Cursor> {
        match self.sort.as_slice() {
            [value, tiebreak] => Some(Cursor { value: value.as_f64()?, tiebreak: tiebreak.as_u64()? }),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Aggregations {
    brand: Terms,
    category: Terms,
    price: Ranges,
}

#[derive(Deserialize)]
struct Terms {
    buckets: Vec<TermBucket>,
}

#[derive(Deserialize)]
struct TermBucket {
    key: String,
    doc_count: u64,
}

#[derive(Deserialize)]
struct Ranges {
    buckets: Vec<RangeBucket>,
}

#[derive(Deserialize)]
struct RangeBucket {
    from: Option<f64>,
    doc_count: u64,
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn ensure(&self) -> Result<(), SearchError> {
        let response = self.client.indices().exists(IndicesExistsParts::Index(&[&self.index])).send().await;
        match answer("index exists", response).await {
            Ok(_) => return self.bring_up_to_date().await,
            Err(failure) if failure.status == 404 => {}
            Err(failure) => return Err(failure.error),
        }
        let response =
            self.client.indices().create(IndicesCreateParts::Index(&self.index)).body(Self::definition()).send().await;
        match answer("create index", response).await {
            Ok(_) => Ok(()),
            // Made by someone else since we looked.
            Err(failure) if failure.kind.as_deref() == Some("resource_already_exists_exception") => Ok(()),
            Err(failure) => Err(failure.error),
        }
    }

    async fn upsert(&self, docs: Vec<SearchDoc>) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let indexed_at = stamp();
        let mut actions = Vec::with_capacity(docs.len());
        for doc in &docs {
            let source = Source { doc, tiebreak: tiebreak(&doc.id), indexed_at };
            // The engine keeps the newest revision: an older one is refused (409), an equal one
            // written again.
            let action =
                json!({ "index": { "_id": doc.id, "version": doc.revision.max(0), "version_type": "external_gte" } });
            actions
                .push(BulkAction::new(&doc.id, &[action, serde_json::to_value(source).map_err(SearchError::backend)?]));
        }
        self.bulk("upsert", actions).await
    }

    async fn delete(&self, ids: Vec<String>, at: i64) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        // Versioned: a newer document stays, and the deletion's version is kept (`gc_deletes`) so
        // that an older copy is refused.
        let actions = ids
            .iter()
            .map(|id| {
                BulkAction::new(
                    id,
                    &[json!({ "delete": { "_id": id, "version": at.max(0), "version_type": "external_gte" } })],
                )
            })
            .collect();
        self.bulk("delete", actions).await
    }

    async fn sweep(&self, before: i64) -> Result<(), SearchError> {
        let query = if before == i64::MAX {
            json!({ "match_all": {} })
        } else {
            json!({ "range": { "indexed_at": { "lt": before } } })
        };
        let response = self
            .client
            .delete_by_query(DeleteByQueryParts::Index(&[&self.index]))
            .refresh(true)
            // A document written while the sweep runs is newer than `before`: it is skipped.
            .conflicts(Conflicts::Proceed)
            .request_timeout(SWEEP_TIMEOUT)
            .body(json!({ "query": query }))
            .send()
            .await;
        let answer: DeleteByQueryResponse = parse("sweep", ok("sweep", response).await?)?;
        match answer.failures.first() {
            Some(first) => Err(SearchError::backend(OpenSearchError::Items {
                operation: "sweep",
                failed: answer.failures.len(),
                first: first.to_string(),
            })),
            None => Ok(()),
        }
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        // One hit more than the page tells whether there is a next page.
        let body = Self::search_body(query, limit + 1);
        let response = self.client.search(SearchParts::Index(&[&self.index])).body(body).send().await;
        let answer: SearchResponse = parse("search", ok("search", response).await?)?;

        let mut hits = answer.hits.hits;
        let next = if hits.len() > limit {
            hits.truncate(limit);
            let last = hits.last().and_then(Hit::cursor);
            Some(last.ok_or_else(|| SearchError::backend("OpenSearch search: a hit without its sort values"))?)
        } else {
            None
        };
        let total = answer.hits.total.map_or(hits.len() as u64, |total| total.value);
        let facets = match answer.aggregations {
            Some(aggs) => {
                let mut price = [0; PRICE_EDGES.len() + 1];
                for bucket in aggs.price.buckets {
                    // Buckets are known by their lower bound; the first has none.
                    price[bucket.from.map_or(0, |from| price_bucket(from as i64))] += bucket.doc_count;
                }
                Facets::from_counts(
                    aggs.brand.buckets.into_iter().map(|b| (b.key, b.doc_count)),
                    aggs.category.buckets.into_iter().map(|b| (b.key, b.doc_count)),
                    price,
                )
            }
            None => Facets::from_counts([], [], [0; PRICE_EDGES.len() + 1]),
        };
        Ok(SearchPage { items: hits.iter().map(|hit| hit.source.summary()).collect(), total, facets, next })
    }

    async fn indexed_revisions(&self, ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        // The versions only (documents are versioned by revision), realtime: what a write just made.
        let docs: Vec<Value> = ids.iter().map(|id| json!({ "_id": id, "_source": false })).collect();
        let response = self.client.mget(MgetParts::Index(&self.index)).body(json!({ "docs": docs })).send().await;
        let answer: MgetResponse = parse("mget", ok("mget", response).await?)?;
        Ok(answer.docs.into_iter().filter(|doc| doc.found).filter_map(|doc| Some((doc.id, doc.version?))).collect())
    }

    async fn count(&self) -> Result<u64, SearchError> {
        let response = self.client.count(CountParts::Index(&[&self.index])).send().await;
        let answer: CountResponse = parse("count", ok("count", response).await?)?;
        Ok(answer.count)
    }

    async fn ping(&self) -> Result<(), SearchError> {
        ok("ping", self.client.ping().send().await).await.map(|_| ())
    }

    async fn begin_rebuild(&self) -> Result<Option<Rebuild>, SearchError> {
        let alias = self.rebuild_alias();
        // One rebuild at a time: an index left by a rebuild that died is dropped (a rebuild still
        // running beside this one fails when it swaps, its index gone).
        for leftover in self.aliased(&alias).await? {
            tracing::warn!(index = %leftover, "dropping the index an unfinished rebuild left");
            self.drop_index(&leftover).await?;
        }
        let name = format!("{}-{}", self.index, stamp());
        let mut definition = Self::definition();
        definition["aliases"] = json!({ alias: {} });
        let response = self.client.indices().create(IndicesCreateParts::Index(&name)).body(definition).send().await;
        ok("create the rebuild's index", response).await?;
        *self.rebuilding.lock().expect("rebuild lock") = None;
        // Every writer looks the alias up again within REBUILD_CHECK and writes there too from
        // then on; the rebuild reads the store only after that, so no change falls between.
        tokio::time::sleep(self.rebuild_check * 2).await;
        let target = Self {
            client: self.client.clone(),
            index: name.clone(),
            max_bulk_bytes: self.max_bulk_bytes,
            follows_rebuilds: false,
            rebuild_check: self.rebuild_check,
            rebuilding: Mutex::new(None),
        };
        Ok(Some(Rebuild { name, target: std::sync::Arc::new(target) }))
    }

    async fn finish_rebuild(&self, rebuild: Rebuild) -> Result<(), SearchError> {
        let old = self.aliased(&self.index).await?;
        let mut actions: Vec<Value> =
            old.iter().map(|index| json!({ "remove": { "index": index, "alias": self.index } })).collect();
        if old.is_empty() {
            // The name is an index itself (made by an earlier version), or nothing: an index of
            // that name is dropped in the same step that makes the name an alias.
            let response = self.client.indices().exists(IndicesExistsParts::Index(&[&self.index])).send().await;
            match answer("index exists", response).await {
                Ok(_) => actions.push(json!({ "remove_index": { "index": self.index } })),
                Err(failure) if failure.status == 404 => {}
                Err(failure) => return Err(failure.error),
            }
        }
        actions.push(json!({ "add": { "index": rebuild.name, "alias": self.index } }));
        actions.push(json!({ "remove": { "index": rebuild.name, "alias": self.rebuild_alias() } }));
        let body = json!({ "actions": actions });
        let response = self.client.indices().update_aliases().body(body).send().await;
        ok("swap the rebuilt index in", response).await?;
        *self.rebuilding.lock().expect("rebuild lock") = None;
        for index in old.iter().filter(|index| **index != rebuild.name) {
            // Searches use the new index already: a failure here leaves only a stray index.
            if let Err(error) = self.drop_index(index).await {
                tracing::warn!(index = %index, error = %error, "dropping the replaced index failed");
            }
        }
        Ok(())
    }

    async fn abandon_rebuild(&self, rebuild: Rebuild) -> Result<(), SearchError> {
        *self.rebuilding.lock().expect("rebuild lock") = None;
        self.drop_index(&rebuild.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(percent_decoded("p%40ss%3Aw%2Fd"), "p@ss:w/d");
        assert_eq!(percent_decoded("plain"), "plain");
        assert_eq!(percent_decoded("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn price_ranges_follow_the_bucket_edges() {
        assert_eq!(
            price_ranges(),
            [
                json!({ "to": 2_500 }),
                json!({ "from": 2_500, "to": 5_000 }),
                json!({ "from": 5_000, "to": 10_000 }),
                json!({ "from": 10_000, "to": 25_000 }),
                json!({ "from": 25_000 }),
            ]
        );
    }

    #[test]
    fn index_names_and_schemes_are_checked() {
        let url = url::Url::parse("http://127.0.0.1:9200").unwrap();
        assert!(OpenSearchIndex::new(&url, "products").is_ok());
        assert!(OpenSearchIndex::new(&url, "Products").is_err());
        assert!(OpenSearchIndex::new(&url, "").is_err());
        assert!(OpenSearchIndex::new(&url::Url::parse("ftp://host").unwrap(), "products").is_err());
    }
}
