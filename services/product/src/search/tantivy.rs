//! The Tantivy adapter of the search index (embedded mode): an index under the data dir.
//!
//! Text is matched per word across name (stemmed, boosted most), brand and description (stemmed);
//! words of five letters or more also match within one edit in the name (two from nine letters).
//! Filters and facets are read from fast fields by one collector that counts every match and keeps
//! the page's best `limit + 1` in a heap; a page ends with a cursor (the last sort value and the id's
//! tie-breaker), and the next page is the results strictly after it.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use async_trait::async_trait;
use platform::cache::bounded::BoundedMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher, SegmentOrdinal,
    SegmentReader, TERMINATED,
};
use tantivy::{TantivyDocument, Term};

use super::{
    Cursor, Facets, PRICE_EDGES, ProductSummary, SearchDoc, SearchError, SearchIndex, SearchPage, SearchQuery, Sort,
    TOMBSTONE_TTL, price_bucket, stamp, tiebreak,
};

/// Memory the result summaries kept may take at most (about 250 bytes each: the most shown of a
/// large catalog, not all of it).
const SUMMARIES_MAX_BYTES: usize = 24 * 1024 * 1024;

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    name: Field,
    brand_text: Field,
    brand: Field,
    description: Field,
    category: Field,
    category_path: Field,
    price: Field,
    in_stock: Field,
    created: Field,
    tiebreak: Field,
    summary: Field,
    revision: Field,
    indexed_at: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer("en_stem").set_index_option(IndexRecordOption::WithFreqs),
    );
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer("default").set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: builder.add_text_field("id", STRING),
        name: builder.add_text_field("name", stemmed.clone()),
        brand_text: builder.add_text_field("brand_text", words),
        brand: builder.add_text_field("brand", STRING | FAST),
        description: builder.add_text_field("description", stemmed),
        category: builder.add_text_field("category", STRING | FAST),
        category_path: builder.add_text_field("category_path", STRING),
        price: builder.add_i64_field("price", FAST),
        in_stock: builder.add_u64_field("in_stock", FAST),
        created: builder.add_i64_field("created", FAST),
        tiebreak: builder.add_u64_field("tiebreak", FAST),
        summary: builder.add_text_field("summary", STORED),
        revision: builder.add_i64_field("revision", FAST),
        indexed_at: builder.add_i64_field("indexed_at", FAST | INDEXED),
    };
    (builder.build(), fields)
}

/// The product index in a folder.
#[derive(Clone)]
pub struct TantivyIndex {
    reader: IndexReader,
    /// Result summaries by segment and document, so a page needs few stored-document reads. A
    /// segment never changes, so an entry is never stale (a replaced product is a new document).
    summaries: SummaryCache,
    /// Whole pages by query, valid for one index generation (like OpenSearch's request cache,
    /// emptied by every commit): a popular search is counted once per change of the index.
    pages: Arc<RwLock<CachedPages>>,
    /// Opened fast-field columns by segment.
    columns: ColumnCache,
    /// Fills `columns` as segments appear (the reader holds it weakly).
    _warmer: Arc<ColumnWarmer>,
    /// Listings' matches and counts by segment.
    matched: MatchedCache,
    /// Whether listings use [`Self::listing`] (tests compare it with the collector).
    listings: bool,
    /// Pages kept per generation at most (0: none).
    cache_pages: usize,
    /// Memory the pages kept may take at most.
    cache_bytes: usize,
    writer: Arc<Mutex<Writer>>,
    fields: Fields,
    stemmer: TextAnalyzer,
    words: TextAnalyzer,
}

/// The pages of one index generation and the memory they take.
#[derive(Default)]
struct CachedPages {
    generation: u64,
    pages: HashMap<String, SearchPage>,
    bytes: usize,
}

/// The index writer and what only writes read: the deletions remembered.
struct Writer {
    index: IndexWriter,
    /// Deleted products: the stamp of the deletion and when it was made (kept [`TOMBSTONE_TTL`]).
    tombstones: HashMap<String, (i64, std::time::Instant)>,
}

impl Writer {
    /// The deletion stamp remembered for `id`.
    fn tombstone(&self, id: &str) -> Option<i64> {
        self.tombstones.get(id).map(|(at, _)| *at)
    }

    fn forget_old_tombstones(&mut self) {
        self.tombstones.retain(|_, (_, made)| made.elapsed() < TOMBSTONE_TTL);
    }
}

/// The revisions the index holds now (as of `searcher`, the last commit) of the products `ids`.
fn revisions(searcher: &Searcher, fields: &Fields, ids: &[&str]) -> tantivy::Result<HashMap<String, i64>> {
    let mut found = HashMap::new();
    for segment in searcher.segment_readers() {
        let postings = segment.inverted_index(fields.id)?;
        let column = segment.fast_fields().i64("revision")?;
        for id in ids {
            let term = Term::from_field_text(fields.id, id);
            let Some(mut docs) = postings.read_postings(&term, IndexRecordOption::Basic)? else { continue };
            let mut doc = docs.doc();
            while doc != TERMINATED {
                if segment.alive_bitset().is_none_or(|alive| alive.is_alive(doc)) {
                    found.insert((*id).to_owned(), column.first(doc).unwrap_or(0));
                }
                doc = docs.advance();
            }
        }
    }
    Ok(found)
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex").finish_non_exhaustive()
    }
}

fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SearchError {
    SearchError::backend(error)
}

impl TantivyIndex {
    /// Opens the index in `dir`, creating it when missing, keeping up to `cache_pages` result pages
    /// per index generation. An index of another schema (an older version) is discarded and made
    /// anew: it is derived data, rebuilt by a reindex.
    pub fn open(dir: &Path, cache_pages: usize) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(backend)?;
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(backend)?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(reason)) => {
                tracing::warn!(%reason, "the search index has another schema; making it anew (reindex to fill it)");
                std::fs::remove_dir_all(dir).map_err(backend)?;
                std::fs::create_dir_all(dir).map_err(backend)?;
                let directory = tantivy::directory::MmapDirectory::open(dir).map_err(backend)?;
                Index::create(directory, schema, tantivy::IndexSettings::default()).map_err(backend)?
            }
            Err(error) => return Err(backend(error)),
        };
        Self::with_index(index, fields, cache_pages)
    }

    /// An index in memory (tests).
    pub fn in_memory() -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields, 64)
    }

    fn with_index(index: Index, fields: Fields, cache_pages: usize) -> Result<Self, SearchError> {
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(backend)?;
        let columns: ColumnCache = Arc::default();
        let warmer = Arc::new(ColumnWarmer { columns: columns.clone() });
        let warmers = vec![Arc::downgrade(&warmer) as std::sync::Weak<dyn tantivy::Warmer>];
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).warmers(warmers).try_into().map_err(backend)?;
        let tokenizers = index.tokenizers();
        let stemmer = tokenizers.get("en_stem").ok_or_else(|| backend("no en_stem tokenizer"))?;
        let words = tokenizers.get("default").ok_or_else(|| backend("no default tokenizer"))?;
        Ok(Self {
            reader,
            summaries: Arc::new(BoundedMap::new(SUMMARIES_MAX_BYTES)),
            pages: Arc::default(),
            matched: Arc::new(BoundedMap::new(MATCHED_MAX_BYTES)),
            listings: true,
            columns,
            _warmer: warmer,
            cache_pages,
            cache_bytes: 16 * 1024 * 1024,
            writer: Arc::new(Mutex::new(Writer { index: writer, tombstones: HashMap::new() })),
            fields,
            stemmer,
            words,
        })
    }

    fn document(&self, doc: &SearchDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut document = TantivyDocument::default();
        document.add_text(f.id, &doc.id);
        document.add_text(f.name, &doc.name);
        document.add_text(f.brand_text, &doc.brand);
        document.add_text(f.brand, &doc.brand);
        document.add_text(f.description, &doc.description);
        document.add_text(f.category, &doc.category_id);
        for category in &doc.category_path {
            document.add_text(f.category_path, category);
        }
        document.add_i64(f.price, doc.price);
        document.add_u64(f.in_stock, u64::from(doc.in_stock));
        document.add_i64(f.created, doc.created_at_ms);
        document.add_u64(f.tiebreak, tiebreak(&doc.id));
        document.add_i64(f.revision, doc.revision);
        let summary = serde_json::to_string(&doc.summary()).expect("a summary serializes");
        document.add_text(f.summary, summary);
        document
    }

    /// Runs `change` on the writer, with a searcher of the last commit (every write goes through
    /// here, holding the writer: what it reads is what the index holds), commits and makes the
    /// result visible.
    async fn write(
        &self,
        change: impl FnOnce(&mut Writer, &Searcher) -> tantivy::Result<()> + Send + 'static,
    ) -> Result<(), SearchError> {
        let (writer, reader) = (self.writer.clone(), self.reader.clone());
        tokio::task::spawn_blocking(move || {
            let mut writer = writer.lock().map_err(|_| backend("the index writer panicked"))?;
            if let Err(error) = change(&mut writer, &reader.searcher()) {
                // Nothing of a failed change is kept.
                writer.index.rollback().map_err(backend)?;
                return Err(backend(error));
            }
            writer.index.commit().map_err(backend)?;
            reader.reload().map_err(backend)
        })
        .await
        .map_err(backend)?
    }

    /// Keeps at most `bytes` of result pages (as well as at most the number of pages it was opened
    /// with).
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    fn cached_page(&self, generation: u64, key: &str) -> Option<SearchPage> {
        if self.cache_pages == 0 {
            return None;
        }
        let cached = self.pages.read().expect("pages lock");
        if cached.generation != generation {
            return None;
        }
        cached.pages.get(key).cloned()
    }

    fn cache_page(&self, generation: u64, key: String, page: &SearchPage) {
        let size = key.len() + page.size();
        if self.cache_pages == 0 || size > self.cache_bytes {
            return;
        }
        let mut cached = self.pages.write().expect("pages lock");
        if cached.generation != generation {
            if cached.generation > generation {
                return; // A search on an older reader than the cache's: not worth keeping.
            }
            *cached = CachedPages { generation, ..CachedPages::default() };
        }
        if cached.pages.len() >= self.cache_pages || cached.bytes + size > self.cache_bytes {
            cached.pages.clear();
            cached.bytes = 0;
        }
        if cached.pages.insert(key, page.clone()).is_none() {
            cached.bytes += size;
        }
    }

    /// The summary of the document at `address`: from memory, else from the stored document.
    fn summary(&self, searcher: &tantivy::Searcher, address: DocAddress) -> Result<Arc<ProductSummary>, SearchError> {
        let key = (searcher.segment_reader(address.segment_ord).segment_id(), address.doc_id);
        if let Some(summary) = self.summaries.get(&key) {
            return Ok(summary);
        }
        let document: TantivyDocument = searcher.doc(address).map_err(backend)?;
        let text = document.get_first(self.fields.summary).and_then(|v| v.as_str()).unwrap_or_default();
        let summary: Arc<ProductSummary> = Arc::new(serde_json::from_str(text).map_err(backend)?);
        self.summaries.insert(key, summary.clone(), summary.size());
        Ok(summary)
    }

    /// A search without words (a listing: a department, a brand, filters), answered from the
    /// segments' kept matches and sorted orders: the same counts and page the collector finds by
    /// walking every match.
    fn listing(&self, searcher: &Searcher, search: &SearchQuery, criteria: &Criteria) -> tantivy::Result<Counts> {
        let filters = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            search.category, search.brand, search.in_stock, search.min_price, search.max_price
        );
        let mut weight = None;
        let mut counts = Counts {
            total: 0,
            brand: HashMap::new(),
            category: HashMap::new(),
            price: [0; PRICE_EDGES.len() + 1],
            hits: Vec::new(),
        };
        for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
            let columns = columns(&self.columns, segment)?;
            let key = (segment.segment_id(), segment.num_deleted_docs(), filters.clone());
            // One walk a segment and filters: shoppers asking for a listing at once wait for the
            // first one's walk instead of each walking (a stampede after a start or a merge).
            let cell = self.matched.get_or_insert_with(key, || (Arc::default(), Matched::size(segment, &columns)));
            let mut held = cell.lock().unwrap_or_else(|e| e.into_inner());
            let matched = match &*held {
                Some(matched) => matched.clone(),
                None => {
                    if weight.is_none() {
                        let enabled = tantivy::query::EnableScoring::disabled_from_searcher(searcher);
                        weight = Some(self.query(search, false).weight(enabled)?);
                    }
                    let walked = Matched::walk(weight.as_deref().expect("made above"), segment, &columns, criteria)?;
                    held.insert(Arc::new(walked)).clone()
                }
            };
            drop(held);
            counts.total += matched.total;
            for (value, count) in ord_counts(columns.brand.as_ref(), &matched.brand_counts) {
                *counts.brand.entry(value).or_default() += count;
            }
            for (value, count) in ord_counts(columns.category.as_ref(), &matched.category_counts) {
                *counts.category.entry(value).or_default() += count;
            }
            for (bucket, count) in counts.price.iter_mut().zip(matched.price_counts) {
                *bucket += count;
            }
            if matched.total == 0 {
                continue;
            }
            // The page: the first matches after the cursor in the segment's order.
            let ranking = criteria.ranking;
            let rank = |doc: DocId| {
                let values = columns.values[doc as usize];
                ranking.of(0.0, values.price, values.created)
            };
            let order = columns.order(ranking);
            let start = match criteria.after {
                None => 0,
                Some((after_rank, after_tiebreak)) => order.partition_point(|&doc| {
                    let at = rank(doc).0;
                    at > after_rank || (at == after_rank && columns.tiebreak(doc) <= after_tiebreak)
                }),
            };
            let before = counts.hits.len();
            for &doc in &order[start..] {
                if counts.hits.len() - before == criteria.keep {
                    break;
                }
                if matched.contains(doc) {
                    let (rank, value) = rank(doc);
                    let address = DocAddress::new(ordinal as SegmentOrdinal, doc);
                    counts.hits.push(Hit { rank, value, tiebreak: columns.tiebreak(doc), address });
                }
            }
        }
        counts.hits.sort_by(|a, b| b.precedes(a));
        counts.hits.truncate(criteria.keep);
        Ok(counts)
    }

    fn analyze(analyzer: &TextAnalyzer, text: &str) -> Vec<String> {
        let mut analyzer = analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while let Some(token) = stream.next() {
            tokens.push(token.text.clone());
        }
        tokens
    }

    /// The query of `search`: every word must match somewhere, and the filters (scoring nothing).
    /// With `fuzzy`, longer words also match names within one edit (two from nine letters).
    fn query(&self, search: &SearchQuery, fuzzy: bool) -> Box<dyn Query> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(text) = search.text.as_deref() {
            let words = Self::analyze(&self.words, text);
            let last = words.len().saturating_sub(1);
            for (i, word) in words.into_iter().enumerate() {
                let stems = Self::analyze(&self.stemmer, &word);
                let stem = stems.first().cloned().unwrap_or_else(|| word.clone());
                let mut any: Vec<(Occur, Box<dyn Query>)> = vec![
                    (Occur::Should, boosted(TermQuery::new(Term::from_field_text(f.name, &stem), freqs()), 3.0)),
                    (Occur::Should, boosted(TermQuery::new(Term::from_field_text(f.brand_text, &word), freqs()), 2.0)),
                    (Occur::Should, Box::new(TermQuery::new(Term::from_field_text(f.description, &stem), freqs()))),
                ];
                let letters = word.chars().count();
                if fuzzy && letters >= 5 {
                    let distance = if letters >= 9 { 2 } else { 1 };
                    let fuzzy = FuzzyTermQuery::new(Term::from_field_text(f.name, &stem), distance, true);
                    any.push((Occur::Should, boosted(fuzzy, 1.0)));
                }
                if search.prefix && i == last {
                    // The word being typed: the start of a name's or brand's word.
                    let starts = |field| FuzzyTermQuery::new_prefix(Term::from_field_text(field, &word), 0, false);
                    any.push((Occur::Should, boosted(starts(f.name), 2.0)));
                    any.push((Occur::Should, boosted(starts(f.brand_text), 1.5)));
                }
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
            }
        }
        let filter = |term: Term| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(Box::new(TermQuery::new(term, IndexRecordOption::Basic)), 0.0))
        };
        if let Some(category) = &search.category {
            clauses.push((Occur::Must, filter(Term::from_field_text(f.category_path, category))));
        }
        if let Some(brand) = &search.brand {
            clauses.push((Occur::Must, filter(Term::from_field_text(f.brand, brand))));
        }
        if clauses.is_empty() { Box::new(AllQuery) } else { Box::new(BooleanQuery::new(clauses)) }
    }
}

fn freqs() -> IndexRecordOption {
    IndexRecordOption::WithFreqs
}

fn boosted(query: impl Query + 'static, boost: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(Box::new(query), boost))
}

/// Whether `search` ranks by text score.
fn scored(search: &SearchQuery) -> bool {
    search.sort == Sort::Relevance && search.text.as_deref().is_some_and(|t| !t.trim().is_empty())
}

/// A result's place in the order: a bigger `rank` comes first; equal ranks by ascending tie-breaker.
#[derive(Debug, Clone, Copy)]
struct Hit {
    rank: f64,
    /// The sort value as reported in cursors (score, price or creation time).
    value: f64,
    tiebreak: u64,
    address: DocAddress,
}

impl Hit {
    /// `Greater` when `self` comes before `other`.
    fn precedes(&self, other: &Self) -> Ordering {
        self.rank.total_cmp(&other.rank).then_with(|| other.tiebreak.cmp(&self.tiebreak))
    }
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.precedes(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
/// Heap order: the worst result is the greatest, so a max-heap pops it first.
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        other.precedes(self)
    }
}

/// How a sort turns a document's values into its rank.
#[derive(Debug, Clone, Copy)]
struct Ranking {
    sort: Sort,
    scored: bool,
}

impl Ranking {
    /// (rank, reported value).
    fn of(&self, score: Score, price: i64, created: i64) -> (f64, f64) {
        match (self.sort, self.scored) {
            (Sort::Relevance, true) => (f64::from(score), f64::from(score)),
            (Sort::PriceAsc, _) => (-(price as f64), price as f64),
            (Sort::PriceDesc, _) => (price as f64, price as f64),
            (Sort::Relevance | Sort::Newest, _) => (created as f64, created as f64),
        }
    }

    fn rank_of_value(&self, value: f64) -> f64 {
        if self.sort == Sort::PriceAsc { -value } else { value }
    }
}

/// A segment's fast-field columns, opened once per segment (opening costs more than a search of a
/// small segment), with the values every match reads laid out flat, one 24-byte record a document:
/// a listing of a department reads them for tens of thousands of documents, and a record read in
/// document order costs a fraction of the columns' lookups (row index, bit-unpacking, value
/// mapping, one memory stream a column).
struct SegmentColumns {
    tiebreak: Column<u64>,
    brand: Option<StrColumn>,
    category: Option<StrColumn>,
    values: Vec<DocValues>,
    /// Every document in the order of each listing sort ([`Order`]), made when first asked for.
    orders: [OnceLock<Vec<DocId>>; 3],
}

/// The orders a listing (a search without words) can be asked in.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Newest first (also the relevance order without words).
    Created = 0,
    PriceAsc = 1,
    PriceDesc = 2,
}

impl Order {
    fn of(sort: Sort) -> Self {
        match sort {
            Sort::Relevance | Sort::Newest => Self::Created,
            Sort::PriceAsc => Self::PriceAsc,
            Sort::PriceDesc => Self::PriceDesc,
        }
    }
}

/// What a match reads of a document.
#[derive(Clone, Copy, Default)]
struct DocValues {
    price: i64,
    created: i64,
    /// The brand's term ordinal ([`NO_ORD`]: none), with [`IN_STOCK`] set when it is in stock.
    brand_stock: u32,
    /// The category's term ordinal ([`NO_ORD`]: none).
    category: u32,
}

/// No value in a column of ordinals.
const NO_ORD: u32 = 0x7FFF_FFFF;
/// The bit of [`DocValues::brand_stock`] saying the document is in stock.
const IN_STOCK: u32 = 0x8000_0000;

impl DocValues {
    fn brand(self) -> u32 {
        self.brand_stock & !IN_STOCK
    }

    fn in_stock(self) -> bool {
        self.brand_stock & IN_STOCK != 0
    }
}

impl SegmentColumns {
    fn open(reader: &SegmentReader) -> tantivy::Result<Self> {
        let fast = reader.fast_fields();
        let (price, created, stock) = (fast.i64("price")?, fast.i64("created")?, fast.u64("in_stock")?);
        let (brand, category) = (fast.str("brand")?, fast.str("category")?);
        let ord = |column: &Option<StrColumn>, doc: DocId| -> u32 {
            let ord = column.as_ref().and_then(|c| c.ords().first(doc));
            ord.and_then(|o| u32::try_from(o).ok()).filter(|o| *o < NO_ORD).unwrap_or(NO_ORD)
        };
        let values = (0..reader.max_doc())
            .map(|doc| DocValues {
                price: price.first(doc).unwrap_or_default(),
                created: created.first(doc).unwrap_or_default(),
                brand_stock: ord(&brand, doc) | if stock.first(doc).unwrap_or_default() == 1 { IN_STOCK } else { 0 },
                category: ord(&category, doc),
            })
            .collect();
        Ok(Self { tiebreak: fast.u64("tiebreak")?, brand, category, values, orders: Default::default() })
    }

    fn tiebreak(&self, doc: DocId) -> u64 {
        self.tiebreak.first(doc).unwrap_or_default()
    }

    /// The segment's documents in `ranking`'s order: by rank, best first, then by tie-breaker, as
    /// [`Hit::precedes`] orders results.
    fn order(&self, ranking: Ranking) -> &[DocId] {
        self.orders[Order::of(ranking.sort) as usize].get_or_init(|| {
            let keys: Vec<(f64, u64)> = (0..self.values.len() as DocId)
                .map(|doc| {
                    let values = self.values[doc as usize];
                    (ranking.of(0.0, values.price, values.created).0, self.tiebreak(doc))
                })
                .collect();
            let mut docs: Vec<DocId> = (0..self.values.len() as DocId).collect();
            docs.sort_unstable_by(|&a, &b| {
                let (a, b) = (keys[a as usize], keys[b as usize]);
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
            });
            docs
        })
    }
}

/// The documents of a segment that pass a listing's filters, and their facet counts, kept by
/// segment and filters (a segment never changes; its deletions are part of the key): a listing
/// asked again — its next page, another sort, another shopper — counts nothing, and finds its
/// page in the segment's sorted order, reading a few dozen documents instead of every match.
struct Matched {
    /// One bit a document.
    bits: Vec<u64>,
    total: u64,
    brand_counts: Vec<u64>,
    category_counts: Vec<u64>,
    price_counts: [u64; PRICE_EDGES.len() + 1],
}

impl Matched {
    fn contains(&self, doc: DocId) -> bool {
        (self.bits[(doc / 64) as usize] >> (doc % 64)) & 1 == 1
    }

    /// The memory the matches of `segment` take (known before they are walked).
    fn size(segment: &SegmentReader, columns: &SegmentColumns) -> usize {
        let counts = columns.brand.as_ref().map_or(0, |c| c.num_terms())
            + columns.category.as_ref().map_or(0, |c| c.num_terms());
        ((segment.max_doc() as usize).div_ceil(64) + counts) * 8 + std::mem::size_of::<Self>()
    }

    /// Walks the documents `weight` matches in `segment`, keeping those `criteria`'s price and
    /// stock filters pass.
    fn walk(
        weight: &dyn tantivy::query::Weight,
        segment: &SegmentReader,
        columns: &SegmentColumns,
        criteria: &Criteria,
    ) -> tantivy::Result<Self> {
        let mut matched = Self {
            bits: vec![0; (segment.max_doc() as usize).div_ceil(64)],
            total: 0,
            brand_counts: vec![0; columns.brand.as_ref().map_or(0, |c| c.num_terms())],
            category_counts: vec![0; columns.category.as_ref().map_or(0, |c| c.num_terms())],
            price_counts: [0; PRICE_EDGES.len() + 1],
        };
        let alive = segment.alive_bitset();
        weight.for_each_no_score(segment, &mut |docs| {
            for &doc in docs {
                let values = columns.values[doc as usize];
                let price = values.price;
                if price < criteria.min_price
                    || price > criteria.max_price
                    || criteria.in_stock.is_some_and(|wanted| values.in_stock() != wanted)
                    || alive.is_some_and(|alive| !alive.is_alive(doc))
                {
                    continue;
                }
                matched.bits[(doc / 64) as usize] |= 1 << (doc % 64);
                matched.total += 1;
                matched.price_counts[price_bucket(price)] += 1;
                if let Some(count) = matched.brand_counts.get_mut(values.brand() as usize) {
                    *count += 1;
                }
                if let Some(count) = matched.category_counts.get_mut(values.category as usize) {
                    *count += 1;
                }
            }
        })?;
        Ok(matched)
    }
}

/// [`Matched`] by segment, its deletions and the listing's filters: a cell filled by the first
/// listing that needs it.
type MatchedCache = Arc<BoundedMap<(SegmentId, DocId, String), MatchedCell>>;

type MatchedCell = Arc<Mutex<Option<Arc<Matched>>>>;

/// Memory the kept [`Matched`] may take at most (12.5 KB a segment of 100,000 documents and a
/// listing).
const MATCHED_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Summaries by the document that holds them.
type SummaryCache = Arc<BoundedMap<(SegmentId, DocId), Arc<ProductSummary>>>;

type ColumnCache = Arc<RwLock<HashMap<SegmentId, Arc<SegmentColumns>>>>;

fn columns(cache: &ColumnCache, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
    let id = reader.segment_id();
    if let Some(columns) = cache.read().expect("columns lock").get(&id) {
        return Ok(columns.clone());
    }
    let columns = Arc::new(SegmentColumns::open(reader)?);
    cache.write().expect("columns lock").insert(id, columns.clone());
    Ok(columns)
}

/// Opens the columns of every segment of a new searcher before the searcher is published (tantivy
/// calls it on reload), so no search pays for it — at a million documents, a merged segment's
/// columns take a tenth of a second to read, and every search arriving meanwhile would read them
/// too — and forgets those of segments no searcher holds any more.
struct ColumnWarmer {
    columns: ColumnCache,
}

impl tantivy::Warmer for ColumnWarmer {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            columns(&self.columns, segment)?;
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&tantivy::SearcherGeneration]) {
        let held: std::collections::HashSet<SegmentId> =
            live.iter().flat_map(|generation| generation.segments().keys().copied()).collect();
        self.columns.write().expect("columns lock").retain(|id, _| held.contains(id));
    }
}

/// What every segment's collection needs of the search.
#[derive(Debug, Clone, Copy)]
struct Criteria {
    ranking: Ranking,
    /// The cursor as (rank, tie-breaker).
    after: Option<(f64, u64)>,
    /// Results to keep (a page and one more, to know whether another page follows).
    keep: usize,
    min_price: i64,
    max_price: i64,
    in_stock: Option<bool>,
}

struct SearchCollector {
    columns: ColumnCache,
    criteria: Criteria,
}

struct Counts {
    total: u64,
    brand: HashMap<String, u64>,
    category: HashMap<String, u64>,
    price: [u64; PRICE_EDGES.len() + 1],
    hits: Vec<Hit>,
}

struct SegmentSearch {
    criteria: Criteria,
    segment: SegmentOrdinal,
    columns: Arc<SegmentColumns>,
    brand_counts: Vec<u64>,
    category_counts: Vec<u64>,
    price_counts: [u64; PRICE_EDGES.len() + 1],
    total: u64,
    heap: BinaryHeap<Hit>,
    /// Matches not yet read: see [`SegmentSearch::flush`].
    pending: Vec<(DocId, Score)>,
}

/// Matches read together: their values' reads are independent of one another, so the processor
/// waits for memory once a batch instead of once a match.
const BATCH: usize = 32;

impl Collector for SearchCollector {
    type Fruit = Counts;
    type Child = SegmentSearch;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentSearch> {
        let columns = columns(&self.columns, reader)?;
        Ok(SegmentSearch {
            criteria: self.criteria,
            segment,
            brand_counts: vec![0; columns.brand.as_ref().map_or(0, |c| c.num_terms())],
            category_counts: vec![0; columns.category.as_ref().map_or(0, |c| c.num_terms())],
            columns,
            price_counts: [0; PRICE_EDGES.len() + 1],
            total: 0,
            heap: BinaryHeap::with_capacity(self.criteria.keep + 1),
            pending: Vec::with_capacity(BATCH),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.criteria.ranking.scored
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut merged = Counts {
            total: 0,
            brand: HashMap::new(),
            category: HashMap::new(),
            price: [0; PRICE_EDGES.len() + 1],
            hits: Vec::new(),
        };
        for fruit in fruits {
            merged.total += fruit.total;
            for (value, count) in fruit.brand {
                *merged.brand.entry(value).or_default() += count;
            }
            for (value, count) in fruit.category {
                *merged.category.entry(value).or_default() += count;
            }
            for (bucket, count) in merged.price.iter_mut().zip(fruit.price) {
                *bucket += count;
            }
            merged.hits.extend(fruit.hits);
        }
        merged.hits.sort_by(|a, b| b.precedes(a));
        merged.hits.truncate(self.criteria.keep);
        Ok(merged)
    }
}

fn ord_counts(column: Option<&StrColumn>, counts: &[u64]) -> HashMap<String, u64> {
    let mut named = HashMap::new();
    let Some(column) = column else { return named };
    let mut text = String::new();
    for (ord, &count) in counts.iter().enumerate() {
        if count > 0 && column.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
            named.insert(std::mem::take(&mut text), count);
        }
    }
    named
}

impl SegmentSearch {
    /// Reads the values of the pending matches, then takes each. A match's values are a record in
    /// a segment's array (24 MB for a million documents, more than the processor's caches): read one
    /// at a time between the posting lists' work, each read waits for memory; read in a batch, the
    /// waits overlap.
    fn flush(&mut self) {
        let mut values = [DocValues::default(); BATCH];
        for (slot, &(doc, _)) in values.iter_mut().zip(&self.pending) {
            *slot = self.columns.values[doc as usize];
        }
        for (i, values) in values.into_iter().enumerate().take(self.pending.len()) {
            let (doc, score) = self.pending[i];
            self.take(doc, score, values);
        }
        self.pending.clear();
    }

    fn take(&mut self, doc: DocId, score: Score, values: DocValues) {
        let price = values.price;
        if price < self.criteria.min_price || price > self.criteria.max_price {
            return;
        }
        if let Some(wanted) = self.criteria.in_stock
            && values.in_stock() != wanted
        {
            return;
        }
        self.total += 1;
        self.price_counts[price_bucket(price)] += 1;
        if let Some(count) = self.brand_counts.get_mut(values.brand() as usize) {
            *count += 1;
        }
        if let Some(count) = self.category_counts.get_mut(values.category as usize) {
            *count += 1;
        }
        // Rank first; the tie-breaker is read only for a result that may enter the page.
        let created = match (self.criteria.ranking.sort, self.criteria.ranking.scored) {
            (Sort::Relevance, false) | (Sort::Newest, _) => values.created,
            _ => 0,
        };
        let (rank, value) = self.criteria.ranking.of(score, price, created);
        if let Some((after_rank, _)) = self.criteria.after
            && rank > after_rank
        {
            return;
        }
        if self.heap.len() >= self.criteria.keep
            && let Some(worst) = self.heap.peek()
            && rank < worst.rank
        {
            return;
        }
        let tiebreak = self.columns.tiebreak.first(doc).unwrap_or_default();
        if let Some((after_rank, after_tiebreak)) = self.criteria.after
            && rank == after_rank
            && tiebreak <= after_tiebreak
        {
            return;
        }
        let hit = Hit { rank, value, tiebreak, address: DocAddress::new(self.segment, doc) };
        if self.heap.len() < self.criteria.keep {
            self.heap.push(hit);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && hit.precedes(&worst) == Ordering::Greater
        {
            *worst = hit; // one sift down, where a pop and a push take two
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.pending.push((doc, score));
        if self.pending.len() == BATCH {
            self.flush();
        }
    }

    fn harvest(mut self) -> Counts {
        self.flush();
        Counts {
            total: self.total,
            brand: ord_counts(self.columns.brand.as_ref(), &self.brand_counts),
            category: ord_counts(self.columns.category.as_ref(), &self.category_counts),
            price: self.price_counts,
            hits: self.heap.into_vec(),
        }
    }
}

#[async_trait]
impl SearchIndex for TantivyIndex {
    async fn ensure(&self) -> Result<(), SearchError> {
        Ok(())
    }

    async fn upsert(&self, docs: Vec<SearchDoc>) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        // The newest of each product's documents in the batch (the later of equals).
        let mut newest: HashMap<String, (i64, TantivyDocument)> = HashMap::with_capacity(docs.len());
        for doc in &docs {
            if newest.get(&doc.id).is_none_or(|(revision, _)| *revision <= doc.revision) {
                newest.insert(doc.id.clone(), (doc.revision, self.document(doc)));
            }
        }
        let fields = self.fields;
        self.write(move |writer, searcher| {
            let ids: Vec<&str> = newest.keys().map(String::as_str).collect();
            let held = revisions(searcher, &fields, &ids)?;
            let now = stamp();
            writer.forget_old_tombstones();
            for (key, (revision, mut document)) in newest {
                let stale = held.get(&key).is_some_and(|held| *held > revision)
                    || writer.tombstone(&key).is_some_and(|deleted| deleted > revision);
                if stale {
                    continue;
                }
                document.add_i64(fields.indexed_at, now);
                writer.index.delete_term(Term::from_field_text(fields.id, &key));
                writer.index.add_document(document)?;
            }
            Ok(())
        })
        .await
    }

    async fn indexed_revisions(&self, ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
        let (searcher, fields, ids) = (self.reader.searcher(), self.fields, ids.to_vec());
        tokio::task::spawn_blocking(move || {
            let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
            revisions(&searcher, &fields, &keys).map_err(backend)
        })
        .await
        .map_err(backend)?
    }

    async fn delete(&self, ids: Vec<String>, at: i64) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let fields = self.fields;
        self.write(move |writer, searcher| {
            let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
            let held = revisions(searcher, &fields, &keys)?;
            writer.forget_old_tombstones();
            let made = std::time::Instant::now();
            for key in ids {
                if held.get(&key).is_some_and(|held| *held > at) {
                    // Written from a newer state of the store than the one that found it gone.
                    continue;
                }
                writer.index.delete_term(Term::from_field_text(fields.id, &key));
                let remembered = writer.tombstone(&key).unwrap_or(i64::MIN).max(at);
                writer.tombstones.insert(key, (remembered, made));
            }
            Ok(())
        })
        .await
    }

    async fn sweep(&self, before: i64) -> Result<(), SearchError> {
        let field = self.fields.indexed_at;
        self.write(move |writer, _| {
            if before == i64::MAX {
                writer.index.delete_all_documents()?;
            } else {
                let older = RangeQuery::new(Bound::Unbounded, Bound::Excluded(Term::from_field_i64(field, before)));
                writer.index.delete_query(Box::new(older))?;
            }
            Ok(())
        })
        .await
    }

    async fn search(&self, search: &SearchQuery) -> Result<SearchPage, SearchError> {
        let ranking = Ranking { sort: search.sort, scored: scored(search) };
        let limit = search.limit.clamp(1, super::MAX_LIMIT);
        let collector = SearchCollector {
            columns: self.columns.clone(),
            criteria: Criteria {
                ranking,
                after: search.after.map(|c| (ranking.rank_of_value(c.value), c.tiebreak)),
                keep: limit + 1,
                min_price: search.min_price.unwrap_or(i64::MIN),
                max_price: search.max_price.unwrap_or(i64::MAX),
                in_stock: search.in_stock,
            },
        };
        let searcher = self.reader.searcher();
        let generation = searcher.generation().generation_id();
        let key = format!("{search:?}");
        if let Some(page) = self.cached_page(generation, &key) {
            return Ok(page);
        }
        // Exact words first; typo tolerance only when they find nothing (fuzzy matching costs more,
        // and a correctly spelled word needs none). Without words, a listing.
        let mut counts = if search.text.is_none() && self.listings {
            self.listing(&searcher, search, &collector.criteria).map_err(backend)?
        } else {
            searcher.search(self.query(search, false).as_ref(), &collector).map_err(backend)?
        };
        if counts.total == 0 && search.text.is_some() {
            counts = searcher.search(self.query(search, true).as_ref(), &collector).map_err(backend)?;
        }
        let more = counts.hits.len() > limit;
        let mut items = Vec::with_capacity(limit);
        let mut next = None;
        for hit in counts.hits.iter().take(limit) {
            items.push(self.summary(&searcher, hit.address)?);
            next = Some(Cursor { value: hit.value, tiebreak: hit.tiebreak });
        }
        let page = SearchPage {
            items: items.into_iter().map(Arc::unwrap_or_clone).collect(),
            total: counts.total,
            facets: Facets::from_counts(counts.brand, counts.category, counts.price),
            next: if more { next } else { None },
        };
        self.cache_page(generation, key, &page);
        Ok(page)
    }

    async fn count(&self) -> Result<u64, SearchError> {
        Ok(self.reader.searcher().num_docs())
    }

    async fn ping(&self) -> Result<(), SearchError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(
        id: &str,
        name: &str,
        brand: &str,
        category: &[&str],
        price: i64,
        in_stock: bool,
        created: i64,
    ) -> SearchDoc {
        SearchDoc {
            id: id.into(),
            name: name.into(),
            brand: brand.into(),
            description: format!("The {name} by {brand}, built to last."),
            category_id: category[0].into(),
            category_path: category.iter().map(|c| (*c).to_owned()).collect(),
            price,
            currency: "USD".into(),
            image: None,
            in_stock,
            created_at_ms: created,
            revision: 0,
        }
    }

    async fn catalog() -> TantivyIndex {
        let index = TantivyIndex::in_memory().unwrap();
        index
            .upsert(vec![
                doc("p1", "Trail Running Shoe", "Acme", &["cat-shoes", "cat-fashion"], 8_999, true, 1),
                doc("p2", "Road Running Shoe", "Bolt", &["cat-shoes", "cat-fashion"], 12_000, true, 2),
                doc("p3", "Leather Boot", "Acme", &["cat-shoes", "cat-fashion"], 15_000, false, 3),
                doc("p4", "Wireless Headphones", "Sonic", &["cat-audio", "cat-electronics"], 19_900, true, 4),
                doc("p5", "Espresso Machine", "Acme", &["cat-kitchen", "cat-home"], 2_000, true, 5),
            ])
            .await
            .unwrap();
        index
    }

    fn ids(page: &SearchPage) -> Vec<&str> {
        page.items.iter().map(|i| i.id.as_str()).collect()
    }

    #[tokio::test]
    async fn text_matches_stems_and_typos_and_ranks_names_first() {
        let index = catalog().await;
        let query = |text: &str| SearchQuery { text: Some(text.into()), limit: 10, ..SearchQuery::default() };
        let page = index.search(&query("running shoes")).await.unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items.len(), 2);
        let typo = index.search(&query("hedphones")).await.unwrap();
        assert_eq!(ids(&typo), ["p4"], "one edit away on a longer word");
        assert_eq!(index.search(&query("bot")).await.unwrap().total, 0, "short words must match exactly");
        let brand = index.search(&query("acme")).await.unwrap();
        assert_eq!(brand.total, 3);
    }

    #[tokio::test]
    async fn as_one_types_the_last_word_may_be_only_begun() {
        let index = catalog().await;
        let typed =
            |text: &str| SearchQuery { text: Some(text.into()), prefix: true, limit: 10, ..SearchQuery::default() };
        assert_eq!(ids(&index.search(&typed("head")).await.unwrap()), ["p4"]);
        assert_eq!(ids(&index.search(&typed("wireless hea")).await.unwrap()), ["p4"]);
        assert_eq!(index.search(&typed("trail run")).await.unwrap().total, 1, "earlier words are whole words");
        assert_eq!(ids(&index.search(&typed("bol")).await.unwrap()), ["p2"], "a brand begun");
        assert_eq!(index.search(&typed("runn shoe")).await.unwrap().total, 0, "only the last word may be begun");
        // Without prefix a begun word finds nothing; whole words are found both ways.
        let whole = |text: &str| SearchQuery { text: Some(text.into()), limit: 10, ..SearchQuery::default() };
        assert_eq!(index.search(&whole("head")).await.unwrap().total, 0);
        assert_eq!(index.search(&typed("espresso")).await.unwrap().total, 1);
    }

    #[tokio::test]
    async fn filters_facets_sorts_and_cursors() {
        let index = catalog().await;
        let browse = SearchQuery {
            category: Some("cat-fashion".into()),
            limit: 2,
            sort: Sort::PriceAsc,
            ..SearchQuery::default()
        };
        let first = index.search(&browse).await.unwrap();
        assert_eq!(first.total, 3);
        assert_eq!(ids(&first), ["p1", "p2"]);
        assert_eq!(first.facets.brand.len(), 2);
        assert_eq!(first.facets.category[0].value, "cat-shoes");
        let second = index.search(&SearchQuery { after: first.next, ..browse.clone() }).await.unwrap();
        assert_eq!(ids(&second), ["p3"]);
        assert!(second.next.is_none());

        let filtered = SearchQuery {
            brand: Some("Acme".into()),
            min_price: Some(2_000),
            max_price: Some(10_000),
            in_stock: Some(true),
            sort: Sort::PriceDesc,
            limit: 10,
            ..SearchQuery::default()
        };
        let page = index.search(&filtered).await.unwrap();
        assert_eq!(ids(&page), ["p1", "p5"]);
        assert_eq!(page.facets.price.iter().map(|b| b.count).collect::<Vec<_>>(), [1, 0, 1, 0, 0]);

        let newest = index.search(&SearchQuery { limit: 10, ..SearchQuery::default() }).await.unwrap();
        assert_eq!(ids(&newest), ["p5", "p4", "p3", "p2", "p1"]);
    }

    #[tokio::test]
    async fn listings_from_kept_matches_and_sorted_orders_find_what_walking_every_match_finds() {
        let index = TantivyIndex { cache_pages: 0, ..TantivyIndex::in_memory().unwrap() };
        let brands = ["Acme", "Bolt", "Copperleaf"];
        let categories: [&[&str]; 3] =
            [&["cat-shoes", "cat-fashion"], &["cat-boots", "cat-fashion"], &["cat-kettles", "cat-home"]];
        // Several commits (segments), prices and creation times that repeat (ties), updates and
        // deletions between them.
        for batch in 0..4 {
            let docs = (0..60)
                .map(|i| {
                    let n = batch * 60 + i;
                    let category = categories[n % 3];
                    let mut doc = doc(&format!("p{n}"), "Thing", brands[n % 3 / 2 + n % 2], category, 0, n % 4 != 0, 0);
                    doc.price = 1_000 + (n as i64 * 7_919) % 30_000 / 500 * 500;
                    doc.created_at_ms = (n as i64 * 31) % 97;
                    doc
                })
                .collect();
            index.upsert(docs).await.unwrap();
            index.delete(vec![format!("p{}", batch * 50)], stamp()).await.unwrap();
        }
        let walking = TantivyIndex { listings: false, ..index.clone() };
        let mut compared = 0;
        for category in [None, Some("cat-fashion"), Some("cat-kettles")] {
            for brand in [None, Some("Bolt")] {
                for in_stock in [None, Some(true)] {
                    for (min_price, max_price) in [(None, None), (Some(5_000), Some(20_000))] {
                        for sort in [Sort::Relevance, Sort::Newest, Sort::PriceAsc, Sort::PriceDesc] {
                            let mut query = SearchQuery {
                                category: category.map(str::to_owned),
                                brand: brand.map(str::to_owned),
                                in_stock,
                                min_price,
                                max_price,
                                sort,
                                limit: 7,
                                ..SearchQuery::default()
                            };
                            // Every page, to the last.
                            loop {
                                let listed = index.search(&query).await.unwrap();
                                let walked = walking.search(&query).await.unwrap();
                                assert_eq!(listed, walked, "{query:?}");
                                compared += 1;
                                match listed.next {
                                    Some(next) => query.after = Some(next),
                                    None => break,
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(compared > 200, "{compared} pages compared");
    }

    #[tokio::test]
    async fn a_new_searchers_segments_have_their_columns_before_any_search() {
        let index = TantivyIndex::in_memory().unwrap();
        for batch in 0..3 {
            let docs =
                (0..5).map(|i| doc(&format!("p{batch}-{i}"), "Thing", "Acme", &["cat-a"], 100, true, 0)).collect();
            index.upsert(docs).await.unwrap();
            let searcher = index.reader.searcher();
            let columns = index.columns.read().unwrap();
            for segment in searcher.segment_readers() {
                assert!(columns.contains_key(&segment.segment_id()), "batch {batch}: a segment without its columns");
            }
        }
    }

    #[tokio::test]
    async fn upserts_replace_and_deletes_remove() {
        let index = catalog().await;
        index.upsert(vec![doc("p1", "Trail Running Shoe", "Acme", &["cat-shoes"], 1_000, false, 1)]).await.unwrap();
        assert_eq!(index.count().await.unwrap(), 5);
        index.delete(vec!["p2".into(), "missing".into()], stamp()).await.unwrap();
        assert_eq!(index.count().await.unwrap(), 4);
        let page = index
            .search(&SearchQuery { text: Some("running".into()), limit: 5, ..SearchQuery::default() })
            .await
            .unwrap();
        assert_eq!(ids(&page), ["p1"]);
        assert_eq!(page.items[0].price.amount, 1_000);
        index.sweep(i64::MAX).await.unwrap();
        assert_eq!(index.count().await.unwrap(), 0);
    }

    fn revised(id: &str, price: i64, revision: i64) -> SearchDoc {
        SearchDoc { revision, ..doc(id, "Kettle", "Copperleaf", &["cat-kitchen"], price, true, 1) }
    }

    async fn price_of(index: &TantivyIndex, id: &str) -> Option<i64> {
        let page = index.search(&SearchQuery { limit: 100, ..SearchQuery::default() }).await.unwrap();
        page.items.iter().find(|item| item.id == id).map(|item| item.price.amount)
    }

    #[tokio::test]
    async fn only_newer_revisions_replace_and_deletions_refuse_older_copies() {
        let index = TantivyIndex::in_memory().unwrap();
        index.upsert(vec![revised("k", 100, 10)]).await.unwrap();
        index.upsert(vec![revised("k", 90, 9)]).await.unwrap();
        assert_eq!(price_of(&index, "k").await, Some(100), "an older revision does not replace a newer one");
        index.upsert(vec![revised("k", 110, 10)]).await.unwrap();
        assert_eq!(price_of(&index, "k").await, Some(110), "an equal revision is written again");
        index.upsert(vec![revised("k", 120, 12), revised("k", 130, 11)]).await.unwrap();
        assert_eq!(price_of(&index, "k").await, Some(120), "within a batch, the newest wins");

        index.delete(vec!["k".into()], 11).await.unwrap();
        assert_eq!(price_of(&index, "k").await, Some(120), "a deletion older than the document keeps it");
        index.delete(vec!["k".into()], 20).await.unwrap();
        assert_eq!(price_of(&index, "k").await, None);
        index.upsert(vec![revised("k", 120, 12)]).await.unwrap();
        assert_eq!(price_of(&index, "k").await, None, "a copy older than its deletion stays out");
        index.delete(vec!["never-indexed".into()], 20).await.unwrap();
        index.upsert(vec![revised("never-indexed", 1, 19)]).await.unwrap();
        assert_eq!(price_of(&index, "never-indexed").await, None, "deleting the unknown is remembered too");
        index.upsert(vec![revised("k", 140, 21)]).await.unwrap();
        assert_eq!(price_of(&index, "k").await, Some(140), "made again after its deletion, it comes back");
    }

    #[tokio::test]
    async fn a_sweep_removes_what_was_written_before_it_and_keeps_the_rest() {
        let index = TantivyIndex::in_memory().unwrap();
        index.upsert(vec![revised("old", 1, 1), revised("kept", 1, 1)]).await.unwrap();
        let between = stamp();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        index.upsert(vec![revised("kept", 2, 1), revised("new", 3, 1)]).await.unwrap();
        index.sweep(between).await.unwrap();
        assert_eq!(price_of(&index, "old").await, None);
        assert_eq!(price_of(&index, "kept").await, Some(2), "rewritten since: kept");
        assert_eq!(price_of(&index, "new").await, Some(3));
    }
}
