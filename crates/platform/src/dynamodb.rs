//! Helpers every DynamoDB adapter shares: attribute values and their reading ([`Attrs`]), table
//! creation against an emulator ([`create_tables`]), transactions whose cancellation reasons are
//! read per item ([`Transaction`], [`transact`]), the retry of writes that lost a race
//! ([`backoff`], [`MAX_ATTEMPTS`]), sortable sequence numbers ([`next_seq`]) and a service's
//! outbox table for the platform's relay ([`DynamoOutbox`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType,
    TransactWriteItem, WriteRequest,
};
use futures::future::try_join_all;

use crate::events::outbox::{OutboxStore, ParkedEvent};
use crate::events::{BusError, Event};

/// Tries of one write that keeps losing races with other writes before it gives up.
pub const MAX_ATTEMPTS: u32 = 8;

/// Items one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Keys one `BatchGetItem` may ask for.
pub const MAX_BATCH_GET: usize = 100;

/// Requests one `BatchWriteItem` may hold.
pub const MAX_BATCH_WRITE: usize = 25;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A failure of a DynamoDB adapter itself (the services wrap it in their store errors).
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// A call to DynamoDB failed.
    #[error("dynamodb")]
    Sdk(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored item lacks an attribute or holds one of the wrong type.
    #[error("an item of {table} has no valid {attribute}")]
    Malformed {
        /// The table.
        table: String,
        /// The attribute.
        attribute: &'static str,
    },
    /// A stored JSON attribute does not parse.
    #[error("stored JSON in {table}")]
    Json {
        /// The table.
        table: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A write kept losing races.
    #[error("gave up after {0} attempts that each lost a race with another write")]
    Contention(u32),
    /// A transaction was cancelled for a reason other than a lost race.
    #[error("transaction cancelled: {code}: {message}")]
    Cancelled {
        /// DynamoDB's reason code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A write needs more items than one transaction holds.
    #[error("a write of {0} items does not fit in one transaction")]
    TooManyItems(usize),
    /// Batch requests stayed unprocessed.
    #[error("{0} items stayed unprocessed after retries")]
    Unprocessed(usize),
    /// DynamoDB kept throttling the request (a partition or the table over its throughput) after
    /// the retries: answered as 503 with `Retry-After`, never as a fault of ours.
    #[error("DynamoDB is throttling requests")]
    Throttled,
}

/// The error codes with which DynamoDB says a request was over its throughput.
const THROTTLING: [&str; 4] =
    ["ThrottlingException", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

impl DynamoError {
    /// Wraps an SDK (or builder) error; one that says DynamoDB throttled the request (after the
    /// SDK's own retries) is [`DynamoError::Throttled`].
    pub fn sdk(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        let text = format!("{:?}", error);
        if THROTTLING.iter().any(|code| text.contains(code)) {
            tracing::warn!(error = %crate::error::cause_chain(&error), "DynamoDB throttled a request");
            return Self::Throttled;
        }
        Self::Sdk(Box::new(error))
    }
}

/// Whether `error`, or anything it wraps, is DynamoDB throttling (what a service's store error
/// answers as 503 instead of 500).
pub fn is_throttled(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(current) = next {
        if matches!(current.downcast_ref::<DynamoError>(), Some(DynamoError::Throttled)) {
            return true;
        }
        next = current.source();
    }
    false
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Reads the attributes of one stored item, naming the table in errors.
pub struct Attrs<'a> {
    table: &'a str,
    item: &'a Item,
}

impl<'a> Attrs<'a> {
    /// The attributes of `item`, read from `table`.
    pub fn new(table: &'a str, item: &'a Item) -> Self {
        Self { table, item }
    }

    /// The error of a missing or mistyped attribute.
    pub fn malformed(&self, attribute: &'static str) -> DynamoError {
        DynamoError::Malformed { table: self.table.to_owned(), attribute }
    }

    /// A string attribute, if present.
    pub fn opt_s(&self, name: &'static str) -> Option<&'a str> {
        self.item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
    }

    /// A string attribute.
    pub fn s(&self, name: &'static str) -> Result<&'a str, DynamoError> {
        self.opt_s(name).ok_or_else(|| self.malformed(name))
    }

    /// A number attribute, if present.
    pub fn opt_n(&self, name: &'static str) -> Result<Option<i64>, DynamoError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(value) => {
                value.as_n().ok().and_then(|text| text.parse().ok()).map(Some).ok_or_else(|| self.malformed(name))
            }
        }
    }

    /// A number attribute.
    pub fn n(&self, name: &'static str) -> Result<i64, DynamoError> {
        self.opt_n(name)?.ok_or_else(|| self.malformed(name))
    }

    /// A list of strings.
    pub fn strings(&self, name: &'static str) -> Result<Vec<String>, DynamoError> {
        let list = self.item.get(name).and_then(|v| v.as_l().ok()).ok_or_else(|| self.malformed(name))?;
        list.iter().map(|v| v.as_s().cloned().map_err(|_| self.malformed(name))).collect()
    }

    /// A string attribute holding JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &'static str) -> Result<T, DynamoError> {
        serde_json::from_str(self.s(name)?).map_err(|source| DynamoError::Json { table: self.table.to_owned(), source })
    }
}

/// A sequence number (for an outbox item, a ledger entry): the time in milliseconds shifted left 20
/// bits with 20 random bits below, and above every number this process made before. So numbers
/// increase within a process and are unique across processes but for a chance of one in a million
/// per pair made in the same millisecond; puts keyed by them are conditional, and a collision is
/// retried.
pub fn next_seq() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let random = (uuid::Uuid::new_v4().as_u128() & 0xF_FFFF) as i64;
    let candidate = (chrono::Utc::now().timestamp_millis() << 20) | random;
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(candidate.max(last + 1)))
        .expect("the update always yields a value");
    candidate.max(previous + 1)
}

/// Waits before try `attempt + 1` of a write that lost a race: exponential (5 ms doubling, at most
/// 160 ms), half of it random, so writers that collided spread out instead of colliding again.
pub async fn backoff(attempt: u32) {
    let base = 5_u64 << attempt.min(5);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base / 2 + 1)) as u64;
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
}

/// The outcome of one try of a write that is retried when it lost a race.
pub enum Attempt<T> {
    /// Finished with this result.
    Done(T),
    /// Lost a race: try again from fresh reads.
    Retry,
}

/// Runs `attempt` until it is done, backing off between tries, at most `tries` times
/// ([`DynamoError::Contention`] then).
pub async fn retrying<T, E, F, Fut>(tries: u32, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, E>>,
    E: From<DynamoError>,
{
    for n in 0..tries {
        match attempt().await? {
            Attempt::Done(done) => return Ok(done),
            Attempt::Retry => backoff(n).await,
        }
    }
    Err(DynamoError::Contention(tries).into())
}

/// The shard (of `shards`) of `key`: FNV-1a, stable across processes and releases, so a sharded
/// index key spreads writes over that many partitions.
pub fn shard_of(key: &str, shards: u64) -> u64 {
    let hash = key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    hash % shards
}

/// The items of `table` whose single-attribute key `key` is one of `values` (each asked once),
/// strongly consistent, in batches of [`MAX_BATCH_GET`], retrying unprocessed keys; items not
/// found are absent.
pub async fn batch_get(client: &Client, table: &str, key: &str, values: &[&str]) -> Result<Vec<Item>, DynamoError> {
    let unique: Vec<&str> = values.iter().copied().collect::<HashSet<_>>().into_iter().collect();
    let mut found = Vec::with_capacity(unique.len());
    for chunk in unique.chunks(MAX_BATCH_GET) {
        let keys = chunk.iter().map(|value| HashMap::from([(key.to_owned(), s(*value))])).collect();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(DynamoError::sdk)?,
        );
        let mut attempt = 0;
        while let Some(keys) = request.take() {
            let out = client.batch_get_item().request_items(table, keys).send().await.map_err(DynamoError::sdk)?;
            found.extend(out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
            request = out.unprocessed_keys.and_then(|mut u| u.remove(table)).filter(|k| !k.keys().is_empty());
            if request.is_some() {
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(DynamoError::Unprocessed(request.map_or(0, |k| k.keys().len())));
                }
                backoff(attempt).await;
            }
        }
    }
    Ok(found)
}

/// A table to create: its name, key (partition, then sort) and global secondary indexes (each
/// projecting every attribute).
pub struct TableSpec<'a> {
    /// The table's name.
    pub name: &'a str,
    /// The key attributes.
    pub key: &'a [(&'static str, ScalarAttributeType)],
    /// Index name and key attributes.
    pub indexes: &'a [(&'static str, [(&'static str, ScalarAttributeType); 2])],
}

/// Creates the tables (on-demand capacity) with their indexes and waits until they are active.
/// Tables that exist already are left as they are. Meant for emulators: on AWS the tables come
/// from the infrastructure code.
pub async fn create_tables(client: &Client, specs: &[TableSpec<'_>]) -> Result<(), DynamoError> {
    try_join_all(specs.iter().map(|spec| create_table(client, spec))).await?;
    Ok(())
}

async fn create_table(client: &Client, spec: &TableSpec<'_>) -> Result<(), DynamoError> {
    let mut create = client.create_table().table_name(spec.name).billing_mode(BillingMode::PayPerRequest);
    let mut defined = HashSet::new();
    let index_keys = spec.indexes.iter().flat_map(|(_, keys)| keys.iter());
    for (name, kind) in spec.key.iter().chain(index_keys) {
        if defined.insert(*name) {
            let definition = AttributeDefinition::builder().attribute_name(*name).attribute_type(kind.clone()).build();
            create = create.attribute_definitions(definition.map_err(DynamoError::sdk)?);
        }
    }
    for key in key_schema(spec.key)? {
        create = create.key_schema(key);
    }
    for (name, keys) in spec.indexes {
        let projection = Projection::builder().projection_type(ProjectionType::All).build();
        let index = GlobalSecondaryIndex::builder()
            .index_name(*name)
            .set_key_schema(Some(key_schema(keys)?))
            .projection(projection)
            .build()
            .map_err(DynamoError::sdk)?;
        create = create.global_secondary_indexes(index);
    }
    match create.send().await {
        Ok(_) => {}
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(DynamoError::sdk(error)),
    }
    client
        .wait_until_table_exists()
        .table_name(spec.name)
        .wait(Duration::from_secs(300))
        .await
        .map_err(DynamoError::sdk)?;
    Ok(())
}

/// The key schema of `key`: the partition key, then the sort key if any.
fn key_schema(key: &[(&str, ScalarAttributeType)]) -> Result<Vec<KeySchemaElement>, DynamoError> {
    key.iter()
        .zip([KeyType::Hash, KeyType::Range])
        .map(|((name, _), kind)| {
            KeySchemaElement::builder().attribute_name(*name).key_type(kind).build().map_err(DynamoError::sdk)
        })
        .collect()
}

/// One transaction being assembled, each item with a role (`R`) to read its cancellation reason by.
///
/// Every transaction carries a fresh client request token, so the SDK's own retry of a request
/// whose answer was lost (a timeout, a 5xx after the commit) is applied once: DynamoDB answers a
/// repeated token with the first outcome instead of running the items again against their
/// conditions (which would read as a lost race and be retried as a new write).
pub struct Transaction<R> {
    items: Vec<TransactWriteItem>,
    roles: Vec<R>,
    token: String,
}

impl<R> Default for Transaction<R> {
    fn default() -> Self {
        Self { items: Vec::new(), roles: Vec::new(), token: uuid::Uuid::new_v4().simple().to_string() }
    }
}

impl<R> Transaction<R> {
    /// Adds an item.
    pub fn push(&mut self, role: R, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }

    /// Items so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// How a transaction ended, short of a failure of the service.
pub enum Committed<R> {
    /// Applied.
    Yes,
    /// Cancelled; each item's role with its cancellation reason, in order.
    No(Vec<(R, CancellationReason)>),
}

/// Tries of a transaction DynamoDB cancelled only because it throttled it.
pub const THROTTLED_TRIES: u32 = 6;

/// Runs `tx`. A transaction cancelled only because DynamoDB throttled an item (nothing was
/// applied) is tried again after a pause doubling from 50 ms, with jitter, [`THROTTLED_TRIES`]
/// times in all, then [`DynamoError::Throttled`].
pub async fn transact<R>(client: &Client, tx: Transaction<R>) -> Result<Committed<R>, DynamoError> {
    let Transaction { items, roles, mut token } = tx;
    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(DynamoError::TooManyItems(items.len()));
    }
    for attempt in 0..THROTTLED_TRIES {
        let sent = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(&token)
            .send()
            .await;
        let cancelled = match sent {
            Ok(_) => return Ok(Committed::Yes),
            Err(error) => match error.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled,
                other => return Err(DynamoError::sdk(other)),
            },
        };
        let reasons = cancelled.cancellation_reasons();
        let throttled = reasons.iter().any(throttled_reason)
            && reasons.iter().all(|r| throttled_reason(r) || matches!(r.code(), None | Some("None")));
        if !throttled {
            return Ok(Committed::No(roles.into_iter().zip(reasons.iter().cloned()).collect()));
        }
        metrics::counter!("dynamodb_throttled_total").increment(1);
        // Nothing was applied: the retry is a new request.
        token = uuid::Uuid::new_v4().simple().to_string();
        let base = 50_u64 << attempt.min(5);
        let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
        tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
    }
    tracing::warn!(tries = THROTTLED_TRIES, "DynamoDB kept throttling a transaction");
    Err(DynamoError::Throttled)
}

fn throttled_reason(reason: &CancellationReason) -> bool {
    reason.code().is_some_and(|code| THROTTLING.contains(&code))
}

/// `Ok` when every cancellation reason is a lost race (a condition on state read before, or a
/// conflicting transaction) rather than a request the service refused.
pub fn race_only<'a>(reasons: impl IntoIterator<Item = &'a CancellationReason>) -> Result<(), DynamoError> {
    for reason in reasons {
        match reason.code() {
            None | Some("None" | "ConditionalCheckFailed" | "TransactionConflict") => {}
            Some(code) if THROTTLING.contains(&code) => return Err(DynamoError::Throttled),
            Some(code) => {
                return Err(DynamoError::Cancelled {
                    code: code.to_owned(),
                    message: reason.message().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Whether an item of a cancelled transaction failed its condition.
pub fn failed_condition(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

/// A store's readiness (`/ready`): whether DynamoDB answers for `table`.
#[derive(Debug, Clone)]
pub struct TableCheck {
    client: Client,
    table: String,
}

impl TableCheck {
    /// Checks `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl crate::http::ops::ReadinessCheck for TableCheck {
    fn name(&self) -> &str {
        "dynamodb"
    }

    async fn check(&self) -> Result<(), String> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::error::cause_chain(&e))
    }
}

/// The outbox table's spec: `Service` (S) and `Seq` (N).
pub fn outbox_table(name: &str) -> TableSpec<'_> {
    TableSpec { name, key: &[("Service", ScalarAttributeType::S), ("Seq", ScalarAttributeType::N)], indexes: &[] }
}

/// The partition keys a service's outbox events spread over. DynamoDB gives each partition key about
/// 1,000 write units a second, and a key whose sort key only grows cannot be split, so one key per
/// service would cap its event rate at a few hundred a second (README, "Outbox write ceiling").
pub const OUTBOX_SHARDS: u32 = 16;

static WRITE_SHARDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(OUTBOX_SHARDS);

/// Sets how many of the [`OUTBOX_SHARDS`] partition keys this process's outbox writes use
/// (`SHOP_OUTBOX_SHARDS`, applied by `Infra::build`); relays read them all whatever it is.
pub fn set_outbox_write_shards(shards: u32) {
    WRITE_SHARDS.store(shards.clamp(1, OUTBOX_SHARDS), Ordering::Relaxed);
}

/// A service's outbox in DynamoDB, for the platform's relay: the events its transactions wrote
/// (with [`DynamoOutbox::put`]) under `Service` = `{service}#{shard}`, the shard chosen by the
/// event's subject (so one aggregate's events stay in order), ordered by `Seq` within it. Beside
/// them, under keys of their own: `{service}#lease` (a relay's lease on each shard, `Seq` = the
/// shard) and `{service}#dead` (events the bus refused for good, `Seq` = their sequence number).
/// Items written under the bare `{service}` key, before the outbox was sharded, are the last
/// partition, so they are published too.
#[derive(Debug, Clone)]
pub struct DynamoOutbox {
    client: Client,
    table: String,
    service: String,
}

fn outbox_error(error: impl std::error::Error + Send + Sync + 'static) -> BusError {
    BusError::Outbox(Box::new(error))
}

impl DynamoOutbox {
    /// The outbox of `service` in `table`.
    pub fn new(client: Client, table: impl Into<String>, service: impl Into<String>) -> Self {
        Self { client, table: table.into(), service: service.into() }
    }

    /// The `Service` key of `partition`: a shard, or the bare service name for the last one.
    fn partition_key(&self, partition: u32) -> String {
        if partition >= OUTBOX_SHARDS { self.service.clone() } else { format!("{}#{partition:02}", self.service) }
    }

    /// The transaction item that records `event` in the outbox.
    pub fn put(&self, event: &Event) -> Result<TransactWriteItem, DynamoError> {
        self.put_body(event.subject.as_deref().unwrap_or(&event.id), Some(&event.id), event.to_json())
    }

    /// The transaction item that records `body` (one or more events, as the service's relay view
    /// reads them) in the shard of `key` (what keeps their order: an aggregate's id).
    pub fn put_body(&self, key: &str, event_id: Option<&str>, body: String) -> Result<TransactWriteItem, DynamoError> {
        let shard = shard_of(key, u64::from(WRITE_SHARDS.load(Ordering::Relaxed))) as u32;
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("Service", s(self.partition_key(shard)))
            .item("Seq", n(next_seq()))
            .item("Body", s(body))
            .item("CreatedAt", n(chrono::Utc::now().timestamp_millis()))
            .condition_expression("attribute_not_exists(Seq)");
        if let Some(id) = event_id {
            put = put.item("EventID", s(id));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(DynamoError::sdk)?).build())
    }
}

impl DynamoOutbox {
    /// Records `body` (one event of an item that made several) as parked with `reason`, leaving the
    /// item itself to the caller.
    pub async fn record_parked(&self, body: &str, reason: &str) -> Result<(), BusError> {
        let put =
            self.client.put_item().table_name(&self.table).set_item(Some(self.dead_item(next_seq(), body, reason)));
        put.send().await.map_err(outbox_error)?;
        Ok(())
    }

    /// The dead-letter item of `body`, parked with `reason` under `seq`.
    fn dead_item(&self, seq: i64, body: &str, reason: &str) -> Item {
        let mut item = HashMap::from([
            ("Service".to_owned(), s(format!("{}#dead", self.service))),
            ("Seq".to_owned(), n(seq)),
            ("Body".to_owned(), s(body)),
            ("Reason".to_owned(), s(reason)),
            ("ParkedAt".to_owned(), n(chrono::Utc::now().timestamp_millis())),
        ]);
        if let Some(id) = crate::events::outbox::event_id_of(body) {
            item.insert("EventID".to_owned(), s(id));
        }
        item
    }
}

#[async_trait]
impl OutboxStore for DynamoOutbox {
    fn partitions(&self) -> u32 {
        OUTBOX_SHARDS + 1
    }

    async fn lease(&self, partition: u32, owner: &str, ttl: Duration) -> Result<bool, BusError> {
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("Service", s(format!("{}#lease", self.service)))
            .item("Seq", n(i64::from(partition)))
            .item("Owner", s(owner))
            .item("Until", n(until))
            .condition_expression("attribute_not_exists(Seq) OR #owner = :owner OR #until < :now")
            .expression_attribute_names("#owner", "Owner")
            .expression_attribute_names("#until", "Until")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(error) => Err(outbox_error(DynamoError::sdk(error))),
        }
    }

    async fn release(&self, partition: u32, owner: &str) -> Result<(), BusError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("Service", s(format!("{}#lease", self.service)))
            .key("Seq", n(i64::from(partition)))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "Owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(outbox_error(DynamoError::sdk(error))),
        }
    }

    async fn fetch(&self, partition: u32, limit: usize) -> Result<Vec<(i64, String)>, BusError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("Service = :service")
            .expression_attribute_values(":service", s(self.partition_key(partition)))
            .consistent_read(true)
            .scan_index_forward(true)
            .limit(limit.min(i32::MAX as usize) as i32)
            .send()
            .await
            .map_err(outbox_error)?;
        out.items()
            .iter()
            .map(|item| {
                let attrs = Attrs::new(&self.table, item);
                Ok((attrs.n("Seq").map_err(outbox_error)?, attrs.s("Body").map_err(outbox_error)?.to_owned()))
            })
            .collect()
    }

    async fn delete(&self, partition: u32, seqs: &[i64]) -> Result<(), BusError> {
        let key = self.partition_key(partition);
        for chunk in seqs.chunks(MAX_BATCH_WRITE) {
            let mut requests = chunk
                .iter()
                .map(|seq| {
                    let delete = DeleteRequest::builder()
                        .key("Service", s(&key))
                        .key("Seq", n(*seq))
                        .build()
                        .map_err(outbox_error)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, BusError>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(outbox_error)?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !requests.is_empty() {
                    attempt += 1;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(outbox_error(DynamoError::Unprocessed(requests.len())));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }

    async fn park(&self, partition: u32, seq: i64, body: &str, reason: &str) -> Result<(), BusError> {
        let dead = Put::builder().table_name(&self.table).set_item(Some(self.dead_item(seq, body, reason)));
        let gone = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("Service", s(self.partition_key(partition)))
            .key("Seq", n(seq))
            .build()
            .map_err(outbox_error)?;
        let mut tx = Transaction::default();
        tx.push((), TransactWriteItem::builder().put(dead.build().map_err(outbox_error)?).build());
        tx.push((), TransactWriteItem::builder().delete(gone).build());
        match transact(&self.client, tx).await.map_err(outbox_error)? {
            Committed::Yes => Ok(()),
            Committed::No(reasons) => {
                Err(outbox_error(race_only(reasons.iter().map(|(_, r)| r)).err().unwrap_or(DynamoError::Contention(1))))
            }
        }
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, BusError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("Service = :service")
            .expression_attribute_values(":service", s(format!("{}#dead", self.service)))
            .scan_index_forward(true)
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .send()
            .await
            .map_err(outbox_error)?;
        out.items()
            .iter()
            .map(|item| {
                let attrs = Attrs::new(&self.table, item);
                Ok(ParkedEvent {
                    seq: attrs.n("Seq").map_err(outbox_error)?,
                    event_id: attrs.opt_s("EventID").map(str::to_owned),
                    body: attrs.s("Body").map_err(outbox_error)?.to_owned(),
                    reason: attrs.s("Reason").map_err(outbox_error)?.to_owned(),
                    parked_at_ms: attrs.n("ParkedAt").map_err(outbox_error)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn sequence_numbers_increase_within_a_process() {
        let seqs: Vec<i64> = (0..10_000).map(|_| next_seq()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(seqs[0] > 0);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("p1", 16), shard_of("p1", 16));
        let used: HashSet<u64> = (0..1000).map(|i| shard_of(&format!("p{i}"), 16)).collect();
        assert_eq!(used.len(), 16);
    }

    #[tokio::test]
    async fn a_write_is_retried_until_done_and_gives_up_after_its_tries() {
        let mut tries = 0;
        let done: Result<u32, DynamoError> = retrying(5, || {
            tries += 1;
            let outcome = if tries < 3 { Attempt::Retry } else { Attempt::Done(tries) };
            async move { Ok(outcome) }
        })
        .await;
        assert_eq!(done.unwrap(), 3);
        let never: Result<(), DynamoError> = retrying(2, || async { Ok(Attempt::Retry) }).await;
        assert!(matches!(never, Err(DynamoError::Contention(2))));
    }

    /// A DynamoDB endpoint that throttles everything: transactions cancelled with `ThrottlingError`,
    /// other calls answered `ProvisionedThroughputExceededException`; counts the requests.
    async fn throttling_endpoint() -> (Client, Arc<std::sync::atomic::AtomicU32>) {
        use axum::http::{HeaderMap, StatusCode};
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = calls.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let body = if target.ends_with("TransactWriteItems") {
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity for one or more global secondary indexes"}]}"#
                } else {
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded"}"#
                };
                (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{address}"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("t", "t", None, None, "t"))
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        (Client::from_conf(config), calls)
    }

    #[tokio::test]
    async fn throttling_is_retried_with_backoff_then_answered_as_503_with_retry_after() {
        crate::install_crypto_provider();
        let (client, calls) = throttling_endpoint().await;
        let outbox = DynamoOutbox::new(client.clone(), "t", "svc");
        let mut tx = Transaction::default();
        tx.push((), outbox.put(&Event::new("t.v1", "svc", serde_json::json!({}))).unwrap());
        tx.push((), outbox.put(&Event::new("t.v1", "svc", serde_json::json!({}))).unwrap());
        let started = std::time::Instant::now();
        let outcome = transact(&client, tx).await;
        assert!(matches!(outcome, Err(DynamoError::Throttled)), "{:?}", outcome.err());
        assert_eq!(calls.load(Ordering::Relaxed), THROTTLED_TRIES, "tried again while throttled");
        assert!(
            started.elapsed() >= Duration::from_millis(25 * 31 / 2),
            "with pauses between: {:?}",
            started.elapsed()
        );

        let single = client.get_item().table_name("t").key("K", s("k")).send().await.map_err(DynamoError::sdk);
        let error = single.unwrap_err();
        assert!(matches!(error, DynamoError::Throttled), "{error:?}");

        // A store error wrapping it answers 503 with Retry-After, not 500.
        #[derive(Debug, thiserror::Error)]
        #[error("store")]
        struct StoreError(#[source] Box<dyn std::error::Error + Send + Sync>);
        impl crate::error::Kinded for StoreError {
            fn kind(&self) -> crate::error::ErrorKind {
                crate::error::backend_kind(self.0.as_ref())
            }
        }
        let answer =
            axum::response::IntoResponse::into_response(crate::http::ApiError::from(StoreError(Box::new(error))));
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.headers()["retry-after"], "1");
        let other = crate::http::ApiError::from(StoreError(Box::new(DynamoError::Contention(3))));
        assert_eq!(axum::response::IntoResponse::into_response(other).status(), 500);
    }

    #[test]
    fn attributes_are_read_with_their_types() {
        let item: Item = HashMap::from([
            ("A".to_owned(), s("x")),
            ("B".to_owned(), n(7)),
            ("C".to_owned(), AttributeValue::L(vec![s("p"), s("q")])),
            ("D".to_owned(), s("{\"k\":1}")),
        ]);
        let attrs = Attrs::new("t", &item);
        assert_eq!(attrs.s("A").unwrap(), "x");
        assert_eq!(attrs.n("B").unwrap(), 7);
        assert_eq!(attrs.opt_n("Z").unwrap(), None);
        assert_eq!(attrs.strings("C").unwrap(), ["p", "q"]);
        assert_eq!(attrs.json::<serde_json::Value>("D").unwrap()["k"], 1);
        assert!(matches!(attrs.n("A"), Err(DynamoError::Malformed { attribute: "A", .. })));
    }
}
