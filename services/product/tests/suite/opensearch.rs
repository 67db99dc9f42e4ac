//! The OpenSearch adapter against a stub server: a local HTTP server that records every request and
//! answers with scripted responses shaped as OpenSearch's REST API documents them. Aliases it keeps
//! itself, as the API documents them: an index created with aliases, `POST /_aliases` and a
//! deleted index change them, and alias lookups (`GET /_alias/{name}`) are answered from them.

use std::collections::{HashMap, VecDeque};
use std::error::Error as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use base64::Engine as _;
use serde_json::{Value, json};
use shop_product::search::opensearch::OpenSearchIndex;
use shop_product::search::{
    Cursor, Facets, SearchDoc, SearchError, SearchIndex, SearchPage, SearchQuery, Sort, tiebreak,
};

/// A request the stub received.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    body: String,
}

impl Recorded {
    /// The body as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{} is not JSON: {e}", self.body))
    }

    /// The body as NDJSON lines.
    fn lines(&self) -> Vec<Value> {
        assert!(self.body.ends_with('\n'), "NDJSON ends with a newline: {:?}", self.body);
        self.body.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

#[derive(Default)]
struct Script {
    requests: Vec<Recorded>,
    answers: VecDeque<(u16, Value)>,
    /// Bodies above this many bytes are answered 413 (`http.max_content_length`), using no answer.
    max_body: Option<usize>,
    /// The indices of each alias.
    aliases: HashMap<String, Vec<String>>,
    /// The aliases looked up, in order (answered from `aliases`, using no answer).
    lookups: Vec<String>,
}

impl Script {
    /// Keeps track of the aliases `request` changes (the answer comes from the script).
    fn follow_aliases(&mut self, request: &Recorded) {
        let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
        let index = request.path.trim_start_matches('/').to_owned();
        match (&request.method, request.path.as_str()) {
            (&Method::POST, "/_aliases") => {
                for action in body["actions"].as_array().unwrap() {
                    let (kind, spec) = action.as_object().unwrap().iter().next().unwrap();
                    let target = spec["index"].as_str().unwrap().to_owned();
                    match kind.as_str() {
                        "add" => self.aliases.entry(spec["alias"].as_str().unwrap().into()).or_default().push(target),
                        "remove" => {
                            if let Some(indices) = self.aliases.get_mut(spec["alias"].as_str().unwrap()) {
                                indices.retain(|i| *i != target);
                            }
                        }
                        "remove_index" => {
                            self.aliases.values_mut().for_each(|indices| indices.retain(|i| *i != target))
                        }
                        other => panic!("no such alias action: {other}"),
                    }
                }
            }
            (&Method::PUT, _) if !index.contains('/') => {
                for alias in body["aliases"].as_object().into_iter().flat_map(|a| a.keys()) {
                    self.aliases.entry(alias.clone()).or_default().push(index.clone());
                }
            }
            (&Method::DELETE, _) if !index.contains('/') => {
                self.aliases.values_mut().for_each(|indices| indices.retain(|i| *i != index));
            }
            _ => {}
        }
        self.aliases.retain(|_, indices| !indices.is_empty());
    }

    /// The answer to `GET /_alias/{name}`.
    fn alias_answer(&mut self, name: &str) -> (u16, Value) {
        self.lookups.push(name.to_owned());
        match self.aliases.get(name) {
            Some(indices) => {
                (200, indices.iter().map(|index| (index.clone(), json!({ "aliases": { name: {} } }))).collect())
            }
            None => (404, json!({ "error": format!("alias [{name}] missing"), "status": 404 })),
        }
    }
}

/// The stub OpenSearch node: answers requests in order with its scripted answers.
struct Stub {
    url: url::Url,
    script: Arc<Mutex<Script>>,
}

impl Stub {
    async fn start(answers: impl IntoIterator<Item = (u16, Value)>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            requests: Vec::new(),
            answers: answers.into_iter().collect(),
            ..Script::default()
        }));
        let router = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, script }
    }

    /// Refuses, as a domain does, request bodies over `bytes` with a 413.
    fn refusing_over(self, bytes: usize) -> Self {
        self.script.lock().unwrap().max_body = Some(bytes);
        self
    }

    fn index(&self) -> OpenSearchIndex {
        OpenSearchIndex::new(&self.url, "products").unwrap()
    }

    /// Makes `alias` name `indices`.
    fn with_alias(self, alias: &str, indices: &[&str]) -> Self {
        let indices = indices.iter().map(|i| (*i).to_owned()).collect();
        self.script.lock().unwrap().aliases.insert(alias.into(), indices);
        self
    }

    /// The aliases looked up so far.
    fn lookups(&self) -> Vec<String> {
        self.script.lock().unwrap().lookups.clone()
    }

    /// The indices of `alias` now.
    fn alias(&self, alias: &str) -> Vec<String> {
        self.script.lock().unwrap().aliases.get(alias).cloned().unwrap_or_default()
    }

    /// Every request so far, and checks that every scripted answer was used.
    fn requests(&self) -> Vec<Recorded> {
        let script = self.script.lock().unwrap();
        assert!(script.answers.is_empty(), "answers left over: {:?}", script.answers);
        script.requests.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let mut script = script.lock().unwrap();
    if method == Method::GET
        && let Some(name) = uri.path().strip_prefix("/_alias/")
    {
        let (status, body) = script.alias_answer(name);
        let content = [(header::CONTENT_TYPE, "application/json; charset=UTF-8")];
        return (StatusCode::from_u16(status).unwrap(), content, body.to_string());
    }
    let request = Recorded {
        method,
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect(),
        authorization: headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8(body.to_vec()).unwrap(),
    };
    script.follow_aliases(&request);
    script.requests.push(request);
    if script.max_body.is_some_and(|max| body.len() > max) {
        // What an Amazon OpenSearch Service domain answers above its request size limit.
        let refused = json!({ "Message": format!("Request size exceeded {} bytes", script.max_body.unwrap_or(0)) });
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            refused.to_string(),
        );
    }
    let (status, body) = script
        .answers
        .pop_front()
        .unwrap_or_else(|| (500, error_body(500, "stub_exception", "the stub has no answer for this request")));
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
}

/// OpenSearch's error answer.
fn error_body(status: u16, kind: &str, reason: &str) -> Value {
    json!({
        "error": {
            "root_cause": [{ "type": kind, "reason": reason }],
            "type": kind,
            "reason": reason
        },
        "status": status
    })
}

fn shards() -> Value {
    json!({ "total": 1, "successful": 1, "skipped": 0, "failed": 0 })
}

fn doc(id: &str, name: &str, brand: &str, price: i64) -> SearchDoc {
    SearchDoc {
        id: id.into(),
        name: name.into(),
        brand: brand.into(),
        description: format!("All about {name}."),
        category_id: "c-running".into(),
        category_path: vec!["c-running".into(), "c-shoes".into()],
        price,
        currency: "EUR".into(),
        image: Some(format!("https://img.example/{id}.jpg")),
        in_stock: true,
        created_at_ms: 1_700_000_000_000,
        revision: 1_750_000_000_000_000 + price,
    }
}

/// What the index holds of `doc` (but the time of the write).
fn source(doc: &SearchDoc) -> Value {
    let mut source = serde_json::to_value(doc).unwrap();
    source["tiebreak"] = json!(tiebreak(&doc.id));
    source
}

/// A bulk request's lines, each document's write time checked (between `from` and now) and left out.
fn lines_without_write_times(request: &Recorded, from: i64) -> Vec<Value> {
    let now = shop_product::search::stamp();
    request
        .lines()
        .into_iter()
        .map(|mut line| {
            if let Some(at) = line.as_object_mut().unwrap().remove("indexed_at") {
                let at = at.as_i64().expect("a write time in microseconds");
                assert!((from..=now).contains(&at), "written at {at}, between {from} and {now}");
            }
            line
        })
        .collect()
}

/// A search answer with `hits` (each a document and its sort values), `total` and aggregations.
fn search_answer(hits: &[(&SearchDoc, Value)], total: u64, aggregations: Value) -> Value {
    json!({
        "took": 3,
        "timed_out": false,
        "_shards": shards(),
        "hits": {
            "total": { "value": total, "relation": "eq" },
            "max_score": null,
            "hits": hits.iter().map(|(doc, sort)| json!({
                "_index": "products",
                "_id": doc.id,
                "_score": sort[0],
                "_source": source(doc),
                "sort": sort
            })).collect::<Vec<_>>()
        },
        "aggregations": aggregations
    })
}

fn no_aggregations() -> Value {
    json!({
        "brand": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [] },
        "category": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [] },
        "price": { "buckets": [
            { "key": "*-2500.0", "to": 2500.0, "doc_count": 0 },
            { "key": "2500.0-5000.0", "from": 2500.0, "to": 5000.0, "doc_count": 0 },
            { "key": "5000.0-10000.0", "from": 5000.0, "to": 10000.0, "doc_count": 0 },
            { "key": "10000.0-25000.0", "from": 10000.0, "to": 25000.0, "doc_count": 0 },
            { "key": "25000.0-*", "from": 25000.0, "doc_count": 0 }
        ]}
    })
}

/// The bulk answer for `items` (action, id, status).
fn bulk_answer(items: &[(&str, &str, u16)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|&(action, id, status)| {
            let mut item = json!({ "_index": "products", "_id": id, "status": status });
            match status {
                200 | 201 => {
                    item["result"] = json!(if action == "delete" { "deleted" } else { "created" });
                    item["_version"] = json!(1);
                    item["_shards"] = json!({ "total": 1, "successful": 1, "failed": 0 });
                    item["forced_refresh"] = json!(true);
                }
                404 => item["result"] = json!("not_found"),
                _ => {
                    item["error"] = json!({
                        "type": "mapper_parsing_exception",
                        "reason": "failed to parse field [price] of type [long]"
                    });
                }
            }
            json!({ action: item })
        })
        .collect();
    let errors = items.iter().any(|item| item.as_object().unwrap().values().any(|i| i.get("error").is_some()));
    json!({ "took": 12, "errors": errors, "items": items })
}

/// The message of the backend error's cause (what the service logs).
fn backend_cause(error: SearchError) -> String {
    assert!(matches!(error, SearchError::Backend(_)));
    error.source().unwrap().to_string()
}

#[tokio::test]
async fn opensearch_ensure_creates_the_index_with_its_mapping_when_it_is_missing() {
    let stub = Stub::start([
        (404, json!({})),
        (200, json!({ "acknowledged": true, "shards_acknowledged": true, "index": "products" })),
    ])
    .await;
    stub.index().ensure().await.unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::HEAD, "/products"));
    assert_eq!((&requests[1].method, requests[1].path.as_str()), (&Method::PUT, "/products"));
    let body = requests[1].json();
    assert_eq!(body["settings"]["index"], json!({ "number_of_shards": 1, "gc_deletes": "600s" }));
    assert_eq!(
        body["mappings"]["properties"],
        json!({
            "id": { "type": "keyword" },
            "name": { "type": "text", "analyzer": "english" },
            "brand": { "type": "text", "analyzer": "standard", "fields": { "keyword": { "type": "keyword" } } },
            "description": { "type": "text", "analyzer": "english" },
            "category_id": { "type": "keyword" },
            "category_path": { "type": "keyword" },
            "price": { "type": "long" },
            "currency": { "type": "keyword" },
            "image": { "type": "keyword", "index": false },
            "in_stock": { "type": "boolean" },
            "created_at_ms": { "type": "long" },
            "tiebreak": { "type": "long" },
            "revision": { "type": "long" },
            "indexed_at": { "type": "long" }
        })
    );
}

#[tokio::test]
async fn opensearch_ensure_gives_an_existing_index_the_fields_and_settings_added_since() {
    let stub =
        Stub::start([(200, json!({})), (200, json!({ "acknowledged": true })), (200, json!({ "acknowledged": true }))])
            .await;
    stub.index().ensure().await.unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, Method::HEAD);
    assert_eq!((&requests[1].method, requests[1].path.as_str()), (&Method::PUT, "/products/_mapping"));
    assert_eq!(
        requests[1].json(),
        json!({ "properties": { "revision": { "type": "long" }, "indexed_at": { "type": "long" } } })
    );
    assert_eq!((&requests[2].method, requests[2].path.as_str()), (&Method::PUT, "/products/_settings"));
    assert_eq!(requests[2].json(), json!({ "index": { "gc_deletes": "600s" } }));
}

#[tokio::test]
async fn opensearch_ensure_accepts_an_index_created_concurrently_but_not_other_errors() {
    let exists = "index [products/abc] already exists";
    let stub = Stub::start([
        (404, json!({})),
        (400, error_body(400, "resource_already_exists_exception", exists)),
        (404, json!({})),
        (400, error_body(400, "illegal_argument_exception", "unknown setting [index.bogus]")),
    ])
    .await;
    let index = stub.index();
    index.ensure().await.unwrap();
    let cause = backend_cause(index.ensure().await.unwrap_err());
    assert!(cause.contains("400") && cause.contains("illegal_argument_exception: unknown setting"), "{cause}");
    assert_eq!(stub.requests().len(), 4);
}

#[tokio::test]
async fn opensearch_indexed_revisions_are_the_versions_mget_finds() {
    let answer = json!({ "docs": [
        { "_index": "products", "_id": "p-1", "_version": 7, "_seq_no": 3, "_primary_term": 1, "found": true },
        { "_index": "products", "_id": "p-2", "found": false }
    ] });
    let stub = Stub::start([(200, answer)]).await;
    let held = stub.index().indexed_revisions(&["p-1".to_owned(), "p-2".to_owned()]).await.unwrap();
    assert_eq!(held, std::collections::HashMap::from([("p-1".to_owned(), 7)]));
    let requests = stub.requests();
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::POST, "/products/_mget"));
    assert_eq!(
        requests[0].json(),
        json!({ "docs": [{ "_id": "p-1", "_source": false }, { "_id": "p-2", "_source": false }] })
    );
    assert!(stub.index().indexed_revisions(&[]).await.unwrap().is_empty());
    assert_eq!(stub.requests().len(), 1, "nothing asked, no request");
}

#[tokio::test]
async fn opensearch_upsert_sends_index_actions_and_waits_for_the_refresh() {
    let shoe = doc("p-1", "Trail runner", "Acme", 8_999);
    let mut boot = doc("p-2", "Hiking boot", "Hillside", 14_900);
    boot.image = None;
    let stub = Stub::start([(200, bulk_answer(&[("index", "p-1", 201), ("index", "p-2", 201)]))]).await;
    let from = shop_product::search::stamp();
    stub.index().upsert(vec![shoe.clone(), boot.clone()]).await.unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let bulk = &requests[0];
    assert_eq!((&bulk.method, bulk.path.as_str()), (&Method::POST, "/products/_bulk"));
    assert_eq!(bulk.query.get("refresh").map(String::as_str), Some("wait_for"));
    // Versioned by the products' revisions: the engine refuses an older one than it holds.
    let action = |doc: &SearchDoc| json!({ "index": { "_id": doc.id, "version": doc.revision, "version_type": "external_gte" } });
    assert_eq!(lines_without_write_times(bulk, from), [action(&shoe), source(&shoe), action(&boot), source(&boot)]);
    assert_eq!(bulk.lines()[1]["tiebreak"], json!(tiebreak("p-1")));
    assert_eq!(bulk.lines()[3]["image"], Value::Null);
}

#[tokio::test]
async fn opensearch_bulk_requests_are_bounded_by_bytes_and_a_413_splits_them() {
    let docs: Vec<SearchDoc> = (0..6)
        .map(|i| {
            let mut doc = doc(&format!("p-{i}"), "Rack", "Mesa", 100 + i);
            doc.description = "x".repeat(1_000);
            doc
        })
        .collect();
    let one = 1_500; // about one document's lines
    let ok = |n: usize| (200, bulk_answer(&vec![("index", "p", 201); n]));
    // The adapter packs ~4 documents a request; the domain takes ~2: each refused request is
    // split in two and sent again.
    let stub = Stub::start([ok(2), ok(2), ok(2)]).await.refusing_over(2 * one);
    stub.index().with_max_bulk_bytes(4 * one).upsert(docs.clone()).await.unwrap();
    let requests = stub.requests();
    let sent: Vec<&Recorded> = requests.iter().filter(|r| r.body.len() <= 2 * one).collect();
    assert_eq!(requests.len(), 4, "one refused, three taken");
    assert!(requests.iter().all(|r| r.body.len() <= 4 * one), "no request over the adapter's bound");
    let mut ids: Vec<String> = sent
        .iter()
        .flat_map(|r| r.lines())
        .filter_map(|line| line["index"]["_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    assert_eq!(ids, (0..6).map(|i| format!("p-{i}")).collect::<Vec<_>>(), "each document indexed once");

    // One document larger than the domain takes: an error naming it, not a loop.
    let stub = Stub::start([]).await.refusing_over(one / 2);
    let error = stub.index().upsert(vec![docs[0].clone()]).await.unwrap_err();
    let cause = backend_cause(error);
    assert!(cause.contains("p-0") && cause.contains("413"), "{cause}");
}

#[tokio::test]
async fn opensearch_upsert_reports_failed_items_as_a_backend_error() {
    let stub = Stub::start([(200, bulk_answer(&[("index", "p-1", 201), ("index", "p-2", 400)]))]).await;
    let error = stub.index().upsert(vec![doc("p-1", "A", "B", 1), doc("p-2", "C", "D", 2)]).await.unwrap_err();
    let cause = backend_cause(error);
    assert!(cause.contains("1 items failed") && cause.contains("p-2 status 400"), "{cause}");
    assert!(cause.contains("mapper_parsing_exception"), "{cause}");
}

/// The bulk answer's item for a write refused because the index holds a newer version.
fn version_conflict(action: &str, id: &str, held: i64, given: i64) -> Value {
    let reason =
        format!("[{id}]: version conflict, current version [{held}] is higher than the one provided [{given}]");
    json!({ action: {
        "_index": "products", "_id": id, "status": 409,
        "error": { "type": "version_conflict_engine_exception", "reason": reason, "index": "products", "shard": "0" }
    }})
}

#[tokio::test]
async fn opensearch_a_write_older_than_the_index_holds_is_refused_by_the_engine_and_not_an_error() {
    let stale = doc("p-1", "Trail runner", "Acme", 8_999);
    let answer = json!({ "took": 3, "errors": true, "items": [
        version_conflict("index", "p-1", stale.revision + 5, stale.revision),
        { "index": { "_index": "products", "_id": "p-2", "status": 201, "result": "created", "_version": 9 } }
    ]});
    let deleted = json!({ "took": 3, "errors": true, "items": [version_conflict("delete", "p-1", 90, 80)] });
    let stub = Stub::start([(200, answer), (200, deleted)]).await;
    let index = stub.index();
    index.upsert(vec![stale, doc("p-2", "Hiking boot", "Hillside", 14_900)]).await.unwrap();
    index.delete(vec!["p-1".into()], 80).await.unwrap();
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn opensearch_delete_sends_versioned_delete_actions_and_ignores_unknown_ids() {
    let stub = Stub::start([(200, bulk_answer(&[("delete", "p-1", 200), ("delete", "p-9", 404)]))]).await;
    stub.index().delete(vec!["p-1".into(), "p-9".into()], 1_750_000_000_000_123).await.unwrap();

    let requests = stub.requests();
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::POST, "/products/_bulk"));
    assert_eq!(requests[0].query.get("refresh").map(String::as_str), Some("wait_for"));
    // The deletion's version stays with the engine, refusing copies older than it.
    let delete = |id: &str| json!({ "delete": { "_id": id, "version": 1_750_000_000_000_123_i64, "version_type": "external_gte" } });
    assert_eq!(requests[0].lines(), [delete("p-1"), delete("p-9")]);
}

#[tokio::test]
async fn opensearch_delete_reports_failed_items_but_not_unknown_ids() {
    let stub = Stub::start([(200, bulk_answer(&[("delete", "p-9", 404), ("delete", "p-2", 429)]))]).await;
    let cause = backend_cause(stub.index().delete(vec!["p-9".into(), "p-2".into()], 1).await.unwrap_err());
    assert!(cause.contains("1 items failed") && cause.contains("p-2 status 429"), "{cause}");
}

#[tokio::test]
async fn opensearch_empty_batches_send_nothing() {
    let stub = Stub::start([]).await;
    let index = stub.index();
    index.upsert(Vec::new()).await.unwrap();
    index.delete(Vec::new(), 1).await.unwrap();
    assert!(stub.requests().is_empty());
}

#[tokio::test]
async fn opensearch_search_sends_text_filters_sort_cursor_and_facets_and_reads_the_page() {
    let docs = [
        doc("p-1", "Trail runner", "Acme", 8_999),
        doc("p-2", "Road runner", "Acme", 4_999),
        doc("p-3", "Track spike", "Acme", 12_000),
    ];
    let aggregations = json!({
        "brand": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
            { "key": "Acme", "doc_count": 7 }
        ]},
        "category": { "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
            { "key": "c-running", "doc_count": 5 },
            { "key": "c-trail", "doc_count": 2 }
        ]},
        "price": { "buckets": [
            { "key": "*-2500.0", "to": 2500.0, "doc_count": 0 },
            { "key": "2500.0-5000.0", "from": 2500.0, "to": 5000.0, "doc_count": 3 },
            { "key": "5000.0-10000.0", "from": 5000.0, "to": 10000.0, "doc_count": 2 },
            { "key": "10000.0-25000.0", "from": 10000.0, "to": 25000.0, "doc_count": 2 },
            { "key": "25000.0-*", "from": 25000.0, "doc_count": 0 }
        ]}
    });
    let hits = [
        (&docs[0], json!([3.25, tiebreak("p-1")])),
        (&docs[1], json!([2.5, tiebreak("p-2")])),
        (&docs[2], json!([2.5, tiebreak("p-3")])),
    ];
    let stub = Stub::start([(200, search_answer(&hits, 7, aggregations))]).await;
    let query = SearchQuery {
        text: Some("  trail  runner ".into()),
        prefix: false,
        category: Some("c-shoes".into()),
        brand: Some("Acme".into()),
        min_price: Some(1_000),
        max_price: Some(20_000),
        in_stock: Some(true),
        sort: Sort::Relevance,
        limit: 2,
        after: Some(Cursor { value: 4.5, tiebreak: 42 }),
    };
    let page = stub.index().search(&query).await.unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::POST, "/products/_search"));
    let word = |word: &str| {
        json!({ "multi_match": {
            "query": word,
            "fields": ["name^3", "brand^2", "description"],
            "fuzziness": "AUTO:5,9",
            "operator": "and",
            "zero_terms_query": "all"
        }})
    };
    let terms = |field: &str| json!({ "terms": { "field": field, "size": 50, "order": [{ "_count": "desc" }, { "_key": "asc" }] } });
    assert_eq!(
        requests[0].json(),
        json!({
            "query": { "bool": {
                "must": [word("trail"), word("runner")],
                "filter": [
                    { "term": { "category_path": "c-shoes" } },
                    { "term": { "brand.keyword": "Acme" } },
                    { "range": { "price": { "gte": 1_000, "lte": 20_000 } } },
                    { "term": { "in_stock": true } }
                ]
            }},
            "size": 3,
            "track_total_hits": true,
            "sort": [{ "_score": "desc" }, { "tiebreak": "asc" }],
            "search_after": [4.5, 42],
            "aggs": {
                "brand": terms("brand.keyword"),
                "category": terms("category_id"),
                "price": { "range": { "field": "price", "ranges": [
                    { "to": 2_500 },
                    { "from": 2_500, "to": 5_000 },
                    { "from": 5_000, "to": 10_000 },
                    { "from": 10_000, "to": 25_000 },
                    { "from": 25_000 }
                ]}}
            }
        })
    );
    assert_eq!(
        page,
        SearchPage {
            items: vec![docs[0].summary(), docs[1].summary()],
            total: 7,
            facets: Facets::from_counts(
                [("Acme".into(), 7)],
                [("c-running".into(), 5), ("c-trail".into(), 2)],
                [0, 3, 2, 2, 0]
            ),
            next: Some(Cursor { value: 2.5, tiebreak: tiebreak("p-2") }),
        }
    );
}

#[tokio::test]
async fn opensearch_browsing_sorts_newest_first_and_the_last_page_has_no_next_cursor() {
    let shoe = doc("p-1", "Trail runner", "Acme", 8_999);
    let hits = [(&shoe, json!([shoe.created_at_ms, tiebreak("p-1")]))];
    let stub = Stub::start([(200, search_answer(&hits, 1, no_aggregations()))]).await;
    let query = SearchQuery { text: Some("   ".into()), limit: 2, ..SearchQuery::default() };
    let page = stub.index().search(&query).await.unwrap();

    let body = stub.requests()[0].json();
    assert_eq!(body["query"], json!({ "bool": { "must": [{ "match_all": {} }], "filter": [] } }));
    assert_eq!(body["sort"], json!([{ "created_at_ms": "desc" }, { "tiebreak": "asc" }]));
    assert_eq!(body["size"], 3);
    assert!(body.get("search_after").is_none());
    assert_eq!(page.items, [shoe.summary()]);
    assert_eq!(page.total, 1);
    assert_eq!(page.next, None);
    assert_eq!(page.facets, Facets::from_counts([], [], [0; 5]));
}

#[tokio::test]
async fn opensearch_suggestions_take_the_word_being_typed_as_the_start_of_a_name_or_brand() {
    let shoe = doc("p-1", "Trail runner", "Acme", 8_999);
    let hits = [(&shoe, json!([1.5, tiebreak("p-1")]))];
    let stub = Stub::start([(200, search_answer(&hits, 1, no_aggregations()))]).await;
    let query = SearchQuery { text: Some("trail run".into()), prefix: true, limit: 6, ..SearchQuery::default() };
    let page = stub.index().search(&query).await.unwrap();
    assert_eq!(page.items, [shoe.summary()]);

    let body = stub.requests()[0].json();
    assert_eq!(
        body["query"]["bool"]["must"],
        json!([
            { "multi_match": { "query": "trail", "fields": ["name^3", "brand^2", "description"],
                "fuzziness": "AUTO:5,9", "operator": "and", "zero_terms_query": "all" } },
            { "multi_match": { "query": "run", "type": "phrase_prefix", "fields": ["name^3", "brand^2"] } }
        ])
    );
}

#[tokio::test]
async fn opensearch_price_sorts_continue_after_an_exact_integer_price() {
    let docs = [doc("p-1", "A", "B", 1_999), doc("p-2", "C", "D", 2_999)];
    let hits = [(&docs[0], json!([1_999, tiebreak("p-1")])), (&docs[1], json!([2_999, tiebreak("p-2")]))];
    let stub = Stub::start([
        (200, search_answer(&hits, 9, no_aggregations())),
        (200, search_answer(&[], 9, no_aggregations())),
    ])
    .await;
    let index = stub.index();
    let after = Cursor { value: 999.0, tiebreak: 7 };
    let query = SearchQuery { sort: Sort::PriceAsc, limit: 1, after: Some(after), ..SearchQuery::default() };
    let page = index.search(&query).await.unwrap();
    assert_eq!(page.items, [docs[0].summary()]);
    assert_eq!(page.next, Some(Cursor { value: 1_999.0, tiebreak: tiebreak("p-1") }));
    index.search(&SearchQuery { sort: Sort::PriceDesc, ..query }).await.unwrap();

    let requests = stub.requests();
    let asc = requests[0].json();
    assert_eq!(asc["sort"], json!([{ "price": "asc" }, { "tiebreak": "asc" }]));
    assert_eq!(asc["search_after"], json!([999, 7]));
    assert!(asc["search_after"][0].is_i64());
    assert_eq!(asc["size"], 2);
    assert_eq!(requests[1].json()["sort"], json!([{ "price": "desc" }, { "tiebreak": "asc" }]));
}

#[tokio::test]
async fn opensearch_an_error_answer_becomes_a_backend_error() {
    let reason = "[multi_match] unknown token [START_ARRAY]";
    let stub = Stub::start([(400, error_body(400, "parsing_exception", reason)), (503, json!("unavailable"))]).await;
    let index = stub.index();
    let query = SearchQuery { text: Some("shoe".into()), limit: 10, ..SearchQuery::default() };
    let cause = backend_cause(index.search(&query).await.unwrap_err());
    assert!(cause.contains("search") && cause.contains("status 400"), "{cause}");
    assert!(cause.contains("parsing_exception: [multi_match] unknown token"), "{cause}");
    let cause = backend_cause(index.count().await.unwrap_err());
    assert!(cause.contains("status 503"), "{cause}");
}

#[tokio::test]
async fn opensearch_count_sweep_and_ping_use_their_endpoints() {
    let stub = Stub::start([
        (200, json!({ "count": 7, "_shards": shards() })),
        (
            200,
            json!({
                "took": 5, "timed_out": false, "total": 7, "deleted": 7, "batches": 1,
                "version_conflicts": 0, "noops": 0, "retries": { "bulk": 0, "search": 0 },
                "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0,
                "failures": []
            }),
        ),
        (200, json!({})),
    ])
    .await;
    let index = stub.index();
    assert_eq!(index.count().await.unwrap(), 7);
    index.sweep(1_750_000_000_000_000).await.unwrap();
    index.ping().await.unwrap();

    let requests = stub.requests();
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::GET, "/products/_count"));
    assert_eq!((&requests[1].method, requests[1].path.as_str()), (&Method::POST, "/products/_delete_by_query"));
    assert_eq!(requests[1].query.get("refresh").map(String::as_str), Some("true"));
    assert_eq!(requests[1].query.get("conflicts").map(String::as_str), Some("proceed"));
    assert_eq!(
        requests[1].json(),
        json!({ "query": { "range": { "indexed_at": { "lt": 1_750_000_000_000_000_i64 } } } })
    );
    assert_eq!((&requests[2].method, requests[2].path.as_str()), (&Method::HEAD, "/"));
}

#[tokio::test]
async fn opensearch_credentials_in_the_url_become_basic_auth_and_stay_out_of_sight() {
    let stub = Stub::start([(200, json!({}))]).await;
    let mut url = stub.url.clone();
    url.set_username("search").unwrap();
    url.set_password(Some("p@ss:word")).unwrap();
    let index = OpenSearchIndex::new(&url, "products").unwrap();
    index.ping().await.unwrap();

    let expected = base64::engine::general_purpose::STANDARD.encode("search:p@ss:word");
    assert_eq!(stub.requests()[0].authorization, Some(format!("Basic {expected}")));
    assert!(!format!("{index:?}").contains("p@ss") && !format!("{index:?}").contains("p%40ss"));
    // Without credentials, none are sent.
    let stub = Stub::start([(200, json!({}))]).await;
    stub.index().ping().await.unwrap();
    assert_eq!(stub.requests()[0].authorization, None);
}

#[tokio::test]
async fn opensearch_an_unreachable_node_fails_the_ping() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let index = OpenSearchIndex::new(&url, "products").unwrap();
    let cause = backend_cause(index.ping().await.unwrap_err());
    assert!(cause.contains("ping: no answer"), "{cause}");
}

#[tokio::test]
async fn opensearch_a_stock_change_whose_index_write_failed_is_indexed_on_redelivery() {
    use platform::events::{Event, EventHandler, HandlerError};
    use shop_product::app::indexer::{Indexer, TreeCache};
    use shop_product::store::sqlite::{SqliteCategoryStore, SqliteProductStore};
    use shop_product::store::{CategoryStore, ProductStore};

    let dir = tempfile::tempdir().unwrap();
    let db = platform::sqlite::Db::open(dir.path().join("product.db")).unwrap();
    db.migrate(platform::sqlite::PLATFORM_MIGRATIONS).unwrap();
    db.migrate(shop_product::MIGRATIONS).unwrap();
    let categories: Arc<dyn CategoryStore> = Arc::new(SqliteCategoryStore::new(db.clone()));
    let kitchen = shop_product::domain::category::Category {
        id: "c-kitchen".into(),
        name: "Kitchen".into(),
        parent_id: None,
        slug: "kitchen".into(),
    };
    categories.insert(&kitchen).await.unwrap();
    let products: Arc<dyn ProductStore> = Arc::new(SqliteProductStore::new(db));
    let input = serde_json::from_value(json!({"name": "Kettle", "brand": "Copperleaf", "category_id": "c-kitchen",
        "price": {"amount": 3900, "currency": "USD"}, "variants": [{"sku": "K-1"}]}))
    .unwrap();
    let mut v = platform::http::Validator::new();
    let kettle =
        shop_product::domain::product::build(input, "k1".into(), vec![], false, chrono::Utc::now(), &mut v).unwrap();
    products.insert(&kettle, &shop_product::domain::product::upserted(&kettle, None, true)).await.unwrap();

    // The engine is down for the first write, then answers; it holds the product as it was before
    // the stock (the revision it was created at).
    let created = kettle.revision;
    let stub = Stub::start([
        (503, error_body(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master]")),
        (200, json!({ "docs": [{ "_index": "products", "_id": "k1", "_version": created, "found": true }] })),
        (200, bulk_answer(&[("index", "k1", 200)])),
        // What the write made: the store's revision (a time in microseconds; this one later).
        (200, json!({ "docs": [{ "_index": "products", "_id": "k1", "_version": i64::MAX / 2, "found": true }] })),
    ])
    .await;
    let indexer = Indexer::new(products.clone(), Arc::new(TreeCache::new(categories)), Arc::new(stub.index()));
    let stock = Event::new("inventory.changed.v1", "inventory", json!({"sku": "K-1", "available": 4, "version": 1}));
    assert!(matches!(indexer.handle(&stock).await, Err(HandlerError::Retry(_))), "the event is retried");
    assert!(products.get("k1").await.unwrap().unwrap().in_stock, "the store committed the stock status");
    // Redelivered, the store has nothing new to record: the index is behind the store (the versions
    // `_mget` reads), so the product is indexed as it stands anyway.
    indexer.handle(&stock).await.unwrap();
    // A level that moves no status, once the index holds the store's revision, writes nothing.
    let fewer = Event::new("inventory.changed.v1", "inventory", json!({"sku": "K-1", "available": 3, "version": 2}));
    indexer.handle(&fewer).await.unwrap();

    let requests = stub.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/products/_bulk", "/products/_mget", "/products/_bulk", "/products/_mget"], "no bulk last");
    let revision = products.get("k1").await.unwrap().unwrap().revision;
    let requests: Vec<_> = requests.into_iter().filter(|r| r.path.ends_with("/_bulk")).collect();
    for bulk in &requests {
        let lines = bulk.lines();
        assert_eq!(lines[0]["index"]["_id"], "k1");
        assert_eq!(lines[1]["in_stock"], true, "{lines:?}");
    }
    assert_eq!(requests[1].lines()[0]["index"]["version"], revision, "at the store's revision");
}

fn acknowledged() -> Value {
    json!({ "acknowledged": true })
}

#[tokio::test]
async fn opensearch_a_rebuild_fills_a_new_index_that_live_writes_reach_too_and_swaps_it_in_for_the_old_one() {
    let stub = Stub::start([
        (200, json!({ "acknowledged": true, "shards_acknowledged": true })),
        (200, bulk_answer(&[("index", "live", 201)])),
        (200, bulk_answer(&[("index", "live", 201)])),
        (200, bulk_answer(&[("index", "copied", 201)])),
        (200, json!({})),
        (200, acknowledged()),
    ])
    .await;
    let live = stub.index().with_rebuild_check(std::time::Duration::from_millis(20));
    let rebuild = live.begin_rebuild().await.unwrap().expect("OpenSearch rebuilds beside the live index");
    assert!(rebuild.name.starts_with("products-"), "{}", rebuild.name);
    assert_eq!(stub.alias("products-rebuild"), std::slice::from_ref(&rebuild.name));
    // A live write while the rebuild runs reaches both indices; the rebuild's reaches its own.
    live.upsert(vec![doc("live", "Live Runner", "Acme", 5_000)]).await.unwrap();
    rebuild.target.upsert(vec![doc("copied", "Copied Runner", "Acme", 6_000)]).await.unwrap();
    let name = rebuild.name.clone();
    live.finish_rebuild(rebuild).await.unwrap();

    let requests = stub.requests();
    assert_eq!((&requests[0].method, requests[0].path.as_str()), (&Method::PUT, format!("/{name}").as_str()));
    let definition = requests[0].json();
    assert_eq!(definition["aliases"], json!({ "products-rebuild": {} }));
    assert_eq!(definition["settings"]["index"]["gc_deletes"], json!("600s"));
    assert_eq!(definition["mappings"]["properties"]["category_path"], json!({ "type": "keyword" }));
    assert_eq!(requests[1].path, "/products-rebuild/_bulk");
    assert_eq!(requests[1].query.get("require_alias").map(String::as_str), Some("true"));
    assert_eq!(requests[2].path, "/products/_bulk");
    assert_eq!(requests[2].query.get("require_alias"), None);
    assert_eq!(requests[1].body, requests[2].body, "the same versioned writes");
    assert_eq!(requests[3].path, format!("/{name}/_bulk"));
    // The name was an index made by an earlier version: it is dropped as the alias takes its place.
    assert_eq!((&requests[4].method, requests[4].path.as_str()), (&Method::HEAD, "/products"));
    assert_eq!((&requests[5].method, requests[5].path.as_str()), (&Method::POST, "/_aliases"));
    assert_eq!(
        requests[5].json(),
        json!({ "actions": [
            { "remove_index": { "index": "products" } },
            { "add": { "index": name, "alias": "products" } },
            { "remove": { "index": name, "alias": "products-rebuild" } }
        ]})
    );
    assert_eq!(requests.len(), 6);
    assert_eq!(stub.lookups(), ["products-rebuild", "products-rebuild", "products"]);
    assert_eq!(stub.alias("products"), [name]);
    assert!(stub.alias("products-rebuild").is_empty());
}

#[tokio::test]
async fn opensearch_a_later_rebuild_moves_the_alias_drops_the_old_index_and_what_a_dead_rebuild_left() {
    let no_alias = json!({
        "type": "index_not_found_exception",
        "reason": "no such index [products-rebuild] and [require_alias] request flag is [true] and [products-rebuild] is not an alias"
    });
    let stub = Stub::start([
        (200, acknowledged()),
        (200, json!({ "acknowledged": true, "shards_acknowledged": true })),
        (200, bulk_answer(&[("index", "a", 201)])),
        (200, bulk_answer(&[("index", "a", 201)])),
        (200, acknowledged()),
        (200, acknowledged()),
        (
            200,
            json!({ "took": 1, "errors": true, "items": [
                { "index": { "_index": "products-rebuild", "_id": "b", "status": 404, "error": no_alias } }
            ]}),
        ),
        (200, bulk_answer(&[("index", "b", 201)])),
    ])
    .await
    .with_alias("products", &["products-1"])
    .with_alias("products-rebuild", &["products-0"]);
    let live = stub.index().with_rebuild_check(std::time::Duration::from_millis(20));
    // Another task, which learned of the rebuild before the swap and trusts that for a while.
    let other = stub.index().with_rebuild_check(std::time::Duration::from_secs(60));
    let rebuild = live.begin_rebuild().await.unwrap().unwrap();
    let name = rebuild.name.clone();
    other.upsert(vec![doc("a", "A", "Acme", 1_000)]).await.unwrap();
    live.finish_rebuild(rebuild).await.unwrap();
    // Its next write finds the rebuild alias gone: that copy is moot, the live name has it.
    other.upsert(vec![doc("b", "B", "Acme", 1_000)]).await.unwrap();

    let requests = stub.requests();
    let paths: Vec<(Method, String)> = requests.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(
        paths,
        [
            (Method::DELETE, "/products-0".to_owned()),
            (Method::PUT, format!("/{name}")),
            (Method::POST, "/products-rebuild/_bulk".to_owned()),
            (Method::POST, "/products/_bulk".to_owned()),
            (Method::POST, "/_aliases".to_owned()),
            (Method::DELETE, "/products-1".to_owned()),
            (Method::POST, "/products-rebuild/_bulk".to_owned()),
            (Method::POST, "/products/_bulk".to_owned()),
        ]
    );
    assert_eq!(
        requests[4].json(),
        json!({ "actions": [
            { "remove": { "index": "products-1", "alias": "products" } },
            { "add": { "index": name, "alias": "products" } },
            { "remove": { "index": name, "alias": "products-rebuild" } }
        ]})
    );
    assert_eq!(stub.alias("products"), [name]);
}

#[tokio::test]
async fn opensearch_an_abandoned_rebuild_drops_its_index_and_live_writes_go_to_the_live_one_only() {
    let stub = Stub::start([
        (200, json!({ "acknowledged": true, "shards_acknowledged": true })),
        (200, acknowledged()),
        (200, bulk_answer(&[("index", "a", 201)])),
    ])
    .await
    .with_alias("products", &["products-1"]);
    let live = stub.index().with_rebuild_check(std::time::Duration::from_millis(20));
    let rebuild = live.begin_rebuild().await.unwrap().unwrap();
    let name = rebuild.name.clone();
    live.abandon_rebuild(rebuild).await.unwrap();
    live.upsert(vec![doc("a", "A", "Acme", 1_000)]).await.unwrap();
    let requests = stub.requests();
    assert_eq!((&requests[1].method, requests[1].path.as_str()), (&Method::DELETE, format!("/{name}").as_str()));
    assert_eq!(requests[2].path, "/products/_bulk");
    assert_eq!(stub.alias("products"), ["products-1"]);
    assert!(stub.alias("products-rebuild").is_empty());
}
