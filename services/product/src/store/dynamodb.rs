//! The DynamoDB catalog store, and the product service's outbox in DynamoDB.
//!
//! Tables (all on-demand, named `{prefix}…`; [`DynamoCatalogStore::create_tables`] makes them):
//!
//! | table | key | items |
//! |---|---|---|
//! | `products` | `CategoryID` (S), `ProductID` (S) | one per product: its fields as attributes (`Variants` and `Attributes` as JSON text), `InStockSkus` (how many of its SKUs have availability above zero; `in_stock` is `InStockSkus > 0`) and `Version` |
//! | `product-ids` | `ProductID` (S) | one per product: its `CategoryID`, `Skus`, `CreatedAt` and `Version` |
//! | `product-stock` | `SKU` (S) | one per SKU ever seen: its last known `Available` and the `ProductID` that claims it |
//! | `categories` | `CategoryID` (S) | one per category (`Kind` = `category`: `Name`, `Slug`, `ParentID`, `Created`), and one per slug (`CategoryID` = `SLUG#<slug>`, `Kind` = `slug`) |
//! | `outbox` | `Service` (S), `Seq` (N) | one per event waiting for the relay (`Body`) |
//!
//! Global secondary indexes of `products` (all projecting every attribute):
//! - `by-brand`: `Brand`, `ProductID` — a brand's products;
//! - `by-price`: `CategoryCurrency` (`<category id>#<currency>`), `Price` (the lowest variant price, in
//!   minor units) — a category's products by price, or within a price range, as one `Query`. Prices
//!   only compare within one currency, and keying by category keeps writes spread over many keys (a
//!   catalog-wide key such as the currency alone would be one hot index partition);
//! - `by-id`: `IdShard` (N, a hash of the id modulo [`ID_SHARDS`]), `ProductID` — the whole catalog in
//!   id order, for [`ProductStore::scan`]: one `Query` per shard, merged. It also finds one product
//!   by id with a single (eventually consistent) `Query`.
//!
//! Why `product-ids`: a product's key includes its category, which a replace may change, and index
//! reads are only eventually consistent. The id item is read with a strongly consistent read and
//! written in every product transaction under a condition on its `Version`, so ids are unique across
//! categories, a write never acts on a stale category or SKU list, and a `get` sees the last write.
//!
//! Every product write is one `TransactWriteItems` (at most 100 items): the product item (and the
//! delete of its old item when the category changed), its id item, a claim of each of its SKUs on
//! the stock table (conditional on no other product holding it, and on the SKU's availability being
//! on the side of zero it was read on, so the `InStockSkus` written is exact), the release of each
//! SKU a replace drops, and the outbox event. The worst case (a category move that swaps 48 SKUs for
//! 48 others) is exactly 100 items. Categories are never deleted (the port has no delete), so a
//! strongly consistent read of the category before the transaction is as good as a condition check
//! inside it, and keeps that case within the limit. [`ProductStore::set_availability`] writes the
//! level; when it crosses zero on a SKU a product holds, the same transaction moves the product's
//! `InStockSkus` by one, conditional on the count and the product's `Version` as read. A write that
//! loses a race with another is retried from its reads (up to [`MAX_ATTEMPTS`] tries).
//!
//! The outbox keeps every event of the service under one partition key (so the relay reads them in
//! order with one `Query`); DynamoDB serves about 1000 writes a second per partition key, which
//! bounds the catalog's write rate, bulk imports included.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, Select, TransactWriteItem, Update,
};
use futures::StreamExt;
use futures::future::try_join_all;
use platform::contracts::catalog::TaxCategory;
use platform::dynamodb::{
    self, Attempt, Attrs, Committed, DynamoError, DynamoOutbox, Item, MAX_ATTEMPTS, TableSpec, Transaction, backoff,
    failed_condition, n, next_seq, race_only, retrying, s, transact,
};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::money::Money;

use super::{CategoryStore, ProductStore, StoreError};
use crate::domain::category::{Category, parents_first};
use crate::domain::product::{Product, Variant, next_revision};

/// Shards of the `by-id` index: each is one index partition key, so writes spread over this many
/// keys, and a page of [`ProductStore::scan`] costs this many queries.
pub const ID_SHARDS: u64 = 16;

/// The `Service` key of this service's outbox items.
const OUTBOX_SERVICE: &str = crate::NAME;

/// Product writes in flight at once during [`ProductStore::upsert_many`].
const WRITE_CONCURRENCY: usize = 16;

/// A failure of this adapter that the platform's DynamoDB errors do not name.
#[derive(Debug, thiserror::Error)]
enum CatalogError {
    #[error("the id index query of shard {0} returned no item but more to come")]
    NoProgress(u64),
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// The table names of one deployment.
#[derive(Debug)]
struct Tables {
    products: String,
    product_ids: String,
    stock: String,
    categories: String,
    outbox: String,
}

/// Categories and products in DynamoDB (see the module documentation for the table design).
#[derive(Debug, Clone)]
pub struct DynamoCatalogStore {
    client: Client,
    tables: std::sync::Arc<Tables>,
    signal: OutboxSignal,
}

/// The `by-id` shard of a product id.
pub fn id_shard(id: &str) -> u64 {
    dynamodb::shard_of(id, ID_SHARDS)
}

/// What the `product-ids` table says about one product.
#[derive(Debug, Clone)]
struct IdEntry {
    category_id: String,
    skus: Vec<String>,
    created_at: i64,
    version: i64,
    /// The product's revision (0: written before revisions existed).
    revision: i64,
}

/// What the stock table says about one SKU.
#[derive(Debug, Clone, Default)]
struct StockEntry {
    available: Option<i64>,
    owner: Option<String>,
    /// The inventory's change counter of `available` (0: unversioned).
    version: i64,
}

impl StockEntry {
    fn in_stock(&self) -> bool {
        self.available.is_some_and(|a| a > 0)
    }
}

/// The condition that the level recorded is not newer than the one being written.
const NOT_NEWER: &str = "(attribute_not_exists(StockVersion) OR StockVersion <= :stock_version)";

/// The condition that a SKU's availability is still on the side of zero it was read on.
fn positivity_condition(was_in_stock: bool) -> &'static str {
    if was_in_stock { "Available > :zero" } else { "(attribute_not_exists(Available) OR Available <= :zero)" }
}

/// What one transaction item is, to read its cancellation reason.
#[derive(Debug)]
enum Role {
    Other,
    Claim(String),
}

impl DynamoCatalogStore {
    /// The store's readiness check (`/ready`).
    pub fn readiness(&self) -> dynamodb::TableCheck {
        dynamodb::TableCheck::new(self.client.clone(), self.tables.products.clone())
    }

    /// A store on the tables named `{prefix}products`, `{prefix}product-ids`, `{prefix}product-stock`,
    /// `{prefix}categories` and `{prefix}outbox`.
    pub fn new(client: Client, prefix: &str) -> Self {
        let tables = Tables {
            products: format!("{prefix}products"),
            product_ids: format!("{prefix}product-ids"),
            stock: format!("{prefix}product-stock"),
            categories: format!("{prefix}categories"),
            outbox: format!("{prefix}outbox"),
        };
        Self { client, tables: std::sync::Arc::new(tables), signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each write that recorded events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }

    /// The outbox the product writes record their events in, for the relay.
    pub fn outbox(&self) -> DynamoOutbox {
        DynamoOutbox::new(self.client.clone(), self.tables.outbox.clone(), OUTBOX_SERVICE)
    }

    /// Creates the tables (on-demand capacity) with their indexes and waits until they are active.
    /// Tables that exist already are left as they are.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        use ScalarAttributeType::{N, S};
        let t = &self.tables;
        let specs = [
            TableSpec {
                name: &t.products,
                key: &[("CategoryID", S), ("ProductID", S)],
                indexes: &[
                    ("by-brand", [("Brand", S), ("ProductID", S)]),
                    ("by-price", [("CategoryCurrency", S), ("Price", N)]),
                    ("by-id", [("IdShard", N), ("ProductID", S)]),
                ],
            },
            TableSpec { name: &t.product_ids, key: &[("ProductID", S)], indexes: &[] },
            TableSpec { name: &t.stock, key: &[("SKU", S)], indexes: &[] },
            TableSpec { name: &t.categories, key: &[("CategoryID", S)], indexes: &[] },
            dynamodb::outbox_table(&t.outbox),
        ];
        Ok(dynamodb::create_tables(&self.client, &specs).await?)
    }

    async fn id_entry(&self, id: &str) -> Result<Option<IdEntry>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.product_ids)
            .key("ProductID", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let Some(item) = found.item else { return Ok(None) };
        let attrs = Attrs::new(&self.tables.product_ids, &item);
        Ok(Some(IdEntry {
            category_id: attrs.s("CategoryID")?.to_owned(),
            skus: attrs.strings("Skus")?,
            created_at: attrs.n("CreatedAt")?,
            version: attrs.n("Version")?,
            revision: attrs.opt_n("Revision")?.unwrap_or(0),
        }))
    }

    async fn product_item(&self, category_id: &str, id: &str) -> Result<Option<Item>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.products)
            .key("CategoryID", s(category_id))
            .key("ProductID", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(found.item)
    }

    async fn category_exists(&self, id: &str) -> Result<bool, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.categories)
            .key("CategoryID", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(found.item.is_some_and(|item| Attrs::new(&self.tables.categories, &item).opt_s("Kind") == Some("category")))
    }

    /// The stock entries of `skus` (strongly consistent); SKUs never seen are absent.
    async fn stock_entries(&self, skus: &[String]) -> Result<HashMap<String, StockEntry>, StoreError> {
        let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
        let mut entries = HashMap::with_capacity(skus.len());
        for item in dynamodb::batch_get(&self.client, &self.tables.stock, "SKU", &skus).await? {
            let attrs = Attrs::new(&self.tables.stock, &item);
            let entry = StockEntry {
                available: attrs.opt_n("Available")?,
                owner: attrs.opt_s("ProductID").map(Into::into),
                version: attrs.opt_n("StockVersion")?.unwrap_or(0),
            };
            entries.insert(attrs.s("SKU")?.to_owned(), entry);
        }
        Ok(entries)
    }

    fn product_from_item(&self, item: &Item) -> Result<Product, StoreError> {
        product_from_item(&self.tables.products, item)
    }

    fn release(&self, sku: &str, id: &str) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.stock)
            .key("SKU", s(sku))
            .update_expression("REMOVE ProductID")
            .condition_expression("ProductID = :id")
            .expression_attribute_values(":id", s(id))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One try of writing `product` whole: `Done(false)` when `must_exist` and it does not.
    async fn try_write(&self, product: &Product, event: &Event, must_exist: bool) -> Result<Attempt<bool>, StoreError> {
        let id = product.id.as_str();
        let skus: Vec<String> = product.variants.iter().map(|v| v.sku.clone()).collect();
        // The category is read even when it is the product's already (unchanged by a replace): one
        // round of reads instead of two.
        let (current, stock, category_exists) =
            tokio::try_join!(self.id_entry(id), self.stock_entries(&skus), self.category_exists(&product.category_id))?;
        if must_exist && current.is_none() {
            return Ok(Attempt::Done(false));
        }
        if !category_exists {
            return Err(StoreError::UnknownCategory(product.category_id.clone()));
        }
        let moved_from = current.as_ref().map(|c| c.category_id.as_str()).filter(|c| *c != product.category_id);
        for sku in &skus {
            if stock.get(sku).and_then(|e| e.owner.as_deref()).is_some_and(|owner| owner != id) {
                return Err(StoreError::DuplicateSku(sku.clone()));
            }
        }
        let in_stock_skus = skus.iter().filter(|sku| stock.get(*sku).is_some_and(StockEntry::in_stock)).count() as i64;
        let version = current.as_ref().map_or(1, |c| c.version + 1);
        let revision = next_revision(current.as_ref().map_or(0, |c| c.revision));
        let created_at = current.as_ref().map_or(product.created_at.timestamp_millis(), |c| c.created_at);

        let mut tx = Transaction::default();
        let mut id_put = Put::builder()
            .table_name(&self.tables.product_ids)
            .item("ProductID", s(id))
            .item("CategoryID", s(&product.category_id))
            .item("Skus", AttributeValue::L(skus.iter().map(|sku| s(sku.as_str())).collect()))
            .item("CreatedAt", n(created_at))
            .item("Version", n(version))
            .item("Revision", n(revision));
        id_put = match &current {
            None => id_put.condition_expression("attribute_not_exists(ProductID)"),
            Some(c) => {
                id_put.condition_expression("Version = :version").expression_attribute_values(":version", n(c.version))
            }
        };
        tx.push(Role::Other, TransactWriteItem::builder().put(id_put.build().map_err(backend)?).build());
        let item = product_to_item(product, in_stock_skus, version, revision, created_at);
        let put = Put::builder().table_name(&self.tables.products).set_item(Some(item)).build().map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().put(put).build());
        if let Some(old_category) = moved_from {
            let delete = Delete::builder()
                .table_name(&self.tables.products)
                .key("CategoryID", s(old_category))
                .key("ProductID", s(id))
                .build()
                .map_err(backend)?;
            tx.push(Role::Other, TransactWriteItem::builder().delete(delete).build());
        }
        for sku in &skus {
            let was_in_stock = stock.get(sku).is_some_and(StockEntry::in_stock);
            let claim = Update::builder()
                .table_name(&self.tables.stock)
                .key("SKU", s(sku.as_str()))
                .update_expression("SET ProductID = :id")
                .condition_expression(format!(
                    "(attribute_not_exists(ProductID) OR ProductID = :id) AND {}",
                    positivity_condition(was_in_stock)
                ))
                .expression_attribute_values(":id", s(id))
                .expression_attribute_values(":zero", n(0))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(backend)?;
            tx.push(Role::Claim(sku.clone()), TransactWriteItem::builder().update(claim).build());
        }
        let kept: HashSet<&String> = skus.iter().collect();
        for dropped in current.iter().flat_map(|c| c.skus.iter()).filter(|sku| !kept.contains(sku)) {
            tx.push(Role::Other, self.release(dropped, id)?);
        }
        tx.push(Role::Other, self.outbox().put(event)?);

        match transact(&self.client, tx).await? {
            Committed::Yes => Ok(Attempt::Done(true)),
            Committed::No(reasons) => {
                race_only(reasons.iter().map(|(_, reason)| reason))?;
                for (role, reason) in &reasons {
                    let Role::Claim(sku) = role else { continue };
                    let owner = reason.item().and_then(|item| item.get("ProductID")).and_then(|v| v.as_s().ok());
                    if failed_condition(reason) && owner.is_some_and(|owner| owner != id) {
                        return Err(StoreError::DuplicateSku(sku.clone()));
                    }
                }
                Ok(Attempt::Retry)
            }
        }
    }

    /// Writes `product` whole with its event, retrying lost races; `false` when `must_exist` and it
    /// does not.
    async fn write(&self, product: &Product, event: &Event, must_exist: bool) -> Result<bool, StoreError> {
        let written = retrying(MAX_ATTEMPTS, || self.try_write(product, event, must_exist)).await?;
        self.signal.wake_if(written);
        Ok(written)
    }

    async fn try_delete(&self, id: &str, event: &Event) -> Result<Attempt<bool>, StoreError> {
        let Some(current) = self.id_entry(id).await? else { return Ok(Attempt::Done(false)) };
        let mut tx = Transaction::default();
        let forget = Delete::builder()
            .table_name(&self.tables.product_ids)
            .key("ProductID", s(id))
            .condition_expression("Version = :version")
            .expression_attribute_values(":version", n(current.version))
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().delete(forget).build());
        let delete = Delete::builder()
            .table_name(&self.tables.products)
            .key("CategoryID", s(&current.category_id))
            .key("ProductID", s(id))
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().delete(delete).build());
        for sku in &current.skus {
            tx.push(Role::Other, self.release(sku, id)?);
        }
        tx.push(Role::Other, self.outbox().put(event)?);
        match transact(&self.client, tx).await? {
            Committed::Yes => Ok(Attempt::Done(true)),
            Committed::No(reasons) => {
                race_only(reasons.iter().map(|(_, reason)| reason))?;
                Ok(Attempt::Retry)
            }
        }
    }

    async fn try_set_availability(
        &self,
        sku: &str,
        available: i64,
        version: i64,
    ) -> Result<Attempt<Option<Product>>, StoreError> {
        let entry = self.stock_entries(&[sku.to_owned()]).await?.remove(sku).unwrap_or_default();
        if entry.version > version {
            // An older level than the one recorded: nothing changes.
            return Ok(Attempt::Done(None));
        }
        let (was, now) = (entry.in_stock(), available > 0);
        let owner = match &entry.owner {
            Some(owner) if was != now => owner.clone(),
            _ => {
                // No product's count changes: the level stays on its side of zero, or no product
                // holds the SKU (which the condition makes sure of).
                let condition = if was == now {
                    format!("{} AND {NOT_NEWER}", positivity_condition(was))
                } else {
                    format!("{} AND attribute_not_exists(ProductID) AND {NOT_NEWER}", positivity_condition(was))
                };
                let sent = self
                    .client
                    .update_item()
                    .table_name(&self.tables.stock)
                    .key("SKU", s(sku))
                    .update_expression("SET Available = :available, StockVersion = :stock_version")
                    .condition_expression(condition)
                    .expression_attribute_values(":available", n(available))
                    .expression_attribute_values(":stock_version", n(version))
                    .expression_attribute_values(":zero", n(0))
                    .send()
                    .await;
                return match sent {
                    Ok(_) => Ok(Attempt::Done(None)),
                    Err(error)
                        if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(Attempt::Retry)
                    }
                    Err(error) => Err(backend(error)),
                };
            }
        };
        // The level crosses zero on a SKU that a product holds: its count moves by one, in one
        // transaction with the level, conditional on both being as read.
        let Some(current) = self.id_entry(&owner).await? else {
            // A claim without its product can only be one that a delete is releasing right now.
            return Ok(Attempt::Retry);
        };
        let Some(item) = self.product_item(&current.category_id, &owner).await? else {
            return Ok(Attempt::Retry);
        };
        let attrs = Attrs::new(&self.tables.products, &item);
        let (count, product_version) = (attrs.n("InStockSkus")?, attrs.n("Version")?);
        let after = count + if now { 1 } else { -1 };
        // The stock status is part of what the index shows: the product's revision rises with it,
        // on its item and on its id entry (what the next write of the product reads).
        let revision = next_revision(attrs.opt_n("Revision")?.unwrap_or(0).max(current.revision));
        let mut tx = Transaction::default();
        let level = Update::builder()
            .table_name(&self.tables.stock)
            .key("SKU", s(sku))
            .update_expression("SET Available = :available, StockVersion = :stock_version")
            .condition_expression(format!("{} AND ProductID = :owner AND {NOT_NEWER}", positivity_condition(was)))
            .expression_attribute_values(":available", n(available))
            .expression_attribute_values(":stock_version", n(version))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":owner", s(owner.as_str()))
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().update(level).build());
        let count_update = Update::builder()
            .table_name(&self.tables.products)
            .key("CategoryID", s(&current.category_id))
            .key("ProductID", s(owner.as_str()))
            .update_expression("SET InStockSkus = :after, Revision = :revision")
            .condition_expression("Version = :version AND InStockSkus = :count")
            .expression_attribute_values(":after", n(after))
            .expression_attribute_values(":revision", n(revision))
            .expression_attribute_values(":version", n(product_version))
            .expression_attribute_values(":count", n(count))
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().update(count_update).build());
        let id_update = Update::builder()
            .table_name(&self.tables.product_ids)
            .key("ProductID", s(owner.as_str()))
            .update_expression("SET Revision = :revision")
            .condition_expression("Version = :version")
            .expression_attribute_values(":revision", n(revision))
            .expression_attribute_values(":version", n(current.version))
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().update(id_update).build());
        match transact(&self.client, tx).await? {
            Committed::Yes if (count > 0) != (after > 0) => {
                let mut product = self.product_from_item(&item)?;
                product.in_stock = after > 0;
                product.revision = revision;
                Ok(Attempt::Done(Some(product)))
            }
            Committed::Yes => Ok(Attempt::Done(None)),
            Committed::No(reasons) => {
                race_only(reasons.iter().map(|(_, reason)| reason))?;
                Ok(Attempt::Retry)
            }
        }
    }

    /// One try of adding a category: its item, its slug's item (both new) and a check that the
    /// parent is a category, in one transaction.
    async fn try_insert_category(&self, category: &Category) -> Result<Attempt<()>, StoreError> {
        let mut tx = Transaction::default();
        let mut put = Put::builder()
            .table_name(&self.tables.categories)
            .item("CategoryID", s(&category.id))
            .item("Kind", s("category"))
            .item("Name", s(&category.name))
            .item("Slug", s(&category.slug))
            .item("Created", n(next_seq()))
            .condition_expression("attribute_not_exists(CategoryID)");
        if let Some(parent) = &category.parent_id {
            put = put.item("ParentID", s(parent));
        }
        tx.push(Role::Other, TransactWriteItem::builder().put(put.build().map_err(backend)?).build());
        let slug = Put::builder()
            .table_name(&self.tables.categories)
            .item("CategoryID", s(format!("SLUG#{}", category.slug)))
            .item("Kind", s("slug"))
            .item("Owner", s(&category.id))
            .condition_expression("attribute_not_exists(CategoryID)")
            .build()
            .map_err(backend)?;
        tx.push(Role::Other, TransactWriteItem::builder().put(slug).build());
        if let Some(parent) = &category.parent_id {
            let check = ConditionCheck::builder()
                .table_name(&self.tables.categories)
                .key("CategoryID", s(parent))
                .condition_expression("Kind = :category")
                .expression_attribute_values(":category", s("category"))
                .build()
                .map_err(backend)?;
            tx.push(Role::Other, TransactWriteItem::builder().condition_check(check).build());
        }
        let reasons: Vec<CancellationReason> = match transact(&self.client, tx).await? {
            Committed::Yes => return Ok(Attempt::Done(())),
            Committed::No(reasons) => reasons.into_iter().map(|(_, reason)| reason).collect(),
        };
        race_only(&reasons)?;
        // A taken id or slug comes first, as in the embedded store (where a unique key is checked
        // before a foreign key); a taken id is reported as the embedded store does, as the slug.
        if reasons.iter().take(2).any(failed_condition) {
            Err(StoreError::DuplicateSlug(category.slug.clone()))
        } else if reasons.get(2).is_some_and(failed_condition) {
            Err(StoreError::UnknownParent(category.parent_id.clone().unwrap_or_default()))
        } else {
            Ok(Attempt::Retry)
        }
    }

    /// Up to `limit` products of one `by-id` shard with ids above `after`, in id order, and whether
    /// the shard may hold more.
    async fn id_shard_page(
        &self,
        shard: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Product>, bool), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.products)
            .index_name("by-id")
            .expression_attribute_values(":shard", n(shard as i64))
            .limit(limit.min(1000) as i32);
        query = match after {
            Some(after) => query
                .key_condition_expression("IdShard = :shard AND ProductID > :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("IdShard = :shard"),
        };
        let out = query.send().await.map_err(backend)?;
        let products = out.items().iter().map(|item| self.product_from_item(item)).collect::<Result<Vec<_>, _>>()?;
        let more = out.last_evaluated_key().is_some();
        if more && products.is_empty() {
            return Err(backend(CatalogError::NoProgress(shard)));
        }
        Ok((products, more))
    }
}

/// One table to create: its key (partition, then sort if any) and its global secondary indexes.
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("product attributes and variants serialize")
}

/// The item of `product` (its `in_stock` replaced by the count of its SKUs in stock); `created_at`
/// in Unix milliseconds.
fn product_to_item(product: &Product, in_stock_skus: i64, version: i64, revision: i64, created_at: i64) -> Item {
    let mut item = HashMap::from([
        ("CategoryID".to_owned(), s(&product.category_id)),
        ("ProductID".to_owned(), s(&product.id)),
        ("Name".to_owned(), s(&product.name)),
        ("Description".to_owned(), s(&product.description)),
        ("Currency".to_owned(), s(&product.price.currency)),
        ("Price".to_owned(), n(product.price.amount)),
        ("CategoryCurrency".to_owned(), s(format!("{}#{}", product.category_id, product.price.currency))),
        ("IdShard".to_owned(), n(id_shard(&product.id) as i64)),
        ("Images".to_owned(), AttributeValue::L(product.images.iter().map(|i| s(i.as_str())).collect())),
        ("Attributes".to_owned(), s(to_json(&product.attributes))),
        ("Variants".to_owned(), s(to_json(&product.variants))),
        ("TaxCategory".to_owned(), s(product.tax_category.as_str())),
        ("InStockSkus".to_owned(), n(in_stock_skus)),
        ("Version".to_owned(), n(version)),
        ("Revision".to_owned(), n(revision)),
        ("CreatedAt".to_owned(), n(created_at)),
        ("UpdatedAt".to_owned(), n(product.updated_at.timestamp_millis())),
    ]);
    // An index key may not be an empty string: a product without a brand is just not in `by-brand`.
    if !product.brand.is_empty() {
        item.insert("Brand".into(), s(&product.brand));
    }
    item
}

fn product_from_item(table: &str, item: &Item) -> Result<Product, StoreError> {
    let attrs = Attrs::new(table, item);
    let millis = |name: &'static str| -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        chrono::DateTime::from_timestamp_millis(attrs.n(name)?).ok_or_else(|| attrs.malformed(name).into())
    };
    let variants: Vec<Variant> = attrs.json("Variants")?;
    Ok(Product {
        id: attrs.s("ProductID")?.to_owned(),
        name: attrs.s("Name")?.to_owned(),
        description: attrs.s("Description")?.to_owned(),
        brand: attrs.opt_s("Brand").unwrap_or_default().to_owned(),
        category_id: attrs.s("CategoryID")?.to_owned(),
        price: Money { amount: attrs.n("Price")?, currency: attrs.s("Currency")?.to_owned() },
        images: attrs.strings("Images")?,
        attributes: attrs.json("Attributes")?,
        // Absent on items an earlier version wrote: the standard rate.
        tax_category: attrs.opt_s("TaxCategory").and_then(TaxCategory::parse).unwrap_or_default(),
        variants,
        in_stock: attrs.n("InStockSkus")? > 0,
        created_at: millis("CreatedAt")?,
        updated_at: millis("UpdatedAt")?,
        revision: attrs.opt_n("Revision")?.unwrap_or(0),
    })
}

#[async_trait]
impl CategoryStore for DynamoCatalogStore {
    async fn list(&self) -> Result<Vec<Category>, StoreError> {
        let mut categories = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.tables.categories)
                .filter_expression("Kind = :category")
                .expression_attribute_values(":category", s("category"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items() {
                let attrs = Attrs::new(&self.tables.categories, item);
                let category = Category {
                    id: attrs.s("CategoryID")?.to_owned(),
                    name: attrs.s("Name")?.to_owned(),
                    parent_id: attrs.opt_s("ParentID").map(Into::into),
                    slug: attrs.s("Slug")?.to_owned(),
                };
                categories.push((attrs.n("Created")?, category));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        // Siblings in the order they were added, as the embedded store keeps them.
        categories.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.name.cmp(&y.name)));
        Ok(parents_first(categories.into_iter().map(|(_, c)| c).collect()))
    }

    async fn insert(&self, category: &Category) -> Result<(), StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_insert_category(category)).await
    }
}

#[async_trait]
impl ProductStore for DynamoCatalogStore {
    async fn get(&self, id: &str) -> Result<Option<Product>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(current) = self.id_entry(id).await? else { return Ok(None) };
            match self.product_item(&current.category_id, id).await? {
                Some(item) => return self.product_from_item(&item).map(Some),
                // Moved to another category between the two reads: read the id entry again.
                None => backoff(attempt).await,
            }
        }
        Err(backend(DynamoError::Contention(MAX_ATTEMPTS)))
    }

    /// Reads the stock table's claims (strongly consistent).
    async fn product_ids_of(&self, skus: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let entries = self.stock_entries(skus).await?;
        Ok(entries.into_iter().filter_map(|(sku, entry)| entry.owner.map(|owner| (sku, owner))).collect())
    }

    /// Adds a product, or replaces the one with its id (as the embedded store does).
    async fn insert(&self, product: &Product, event: &Event) -> Result<(), StoreError> {
        self.write(product, event, false).await.map(|_| ())
    }

    async fn replace(&self, product: &Product, event: &Event) -> Result<bool, StoreError> {
        self.write(product, event, true).await
    }

    async fn delete(&self, id: &str, event: &Event) -> Result<bool, StoreError> {
        let deleted = retrying(MAX_ATTEMPTS, || self.try_delete(id, event)).await?;
        self.signal.wake_if(deleted);
        Ok(deleted)
    }

    /// Writes up to [`WRITE_CONCURRENCY`] products at once. Items that share an id or a SKU are
    /// written one after another in the order given, so the outcome is the one of writing the
    /// whole list in order (but for a SKU that one item's replace drops and another claims).
    async fn upsert_many(&self, items: Vec<(Product, Event)>) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut outcomes: Vec<Option<Result<(), StoreError>>> = items.iter().map(|_| None).collect();
        let items = &items;
        let mut runs = futures::stream::iter(related_groups(items))
            .map(|group| async move {
                let mut done = Vec::with_capacity(group.len());
                for i in group {
                    let (product, event) = &items[i];
                    match self.write(product, event, false).await {
                        Err(failure @ StoreError::Backend(_)) => return Err(failure),
                        outcome => done.push((i, outcome.map(|_| ()))),
                    }
                }
                Ok(done)
            })
            .buffer_unordered(WRITE_CONCURRENCY);
        while let Some(done) = runs.next().await {
            for (i, outcome) in done? {
                outcomes[i] = Some(outcome);
            }
        }
        Ok(outcomes.into_iter().map(|o| o.expect("every item is in one group")).collect())
    }

    /// Reads the `by-id` index (eventually consistent, as a reindex may be: the events of later
    /// writes follow it), one query per shard, merging the shards' pages in id order.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<Product>, StoreError> {
        let mut page: Vec<Product> = Vec::with_capacity(limit.min(1000));
        let mut cursor = after.map(str::to_owned);
        while page.len() < limit {
            let need = limit - page.len();
            // About twice a shard's share of the page, so one round usually fills it.
            let per_shard = (need.div_ceil(ID_SHARDS as usize) * 2).clamp(2, 1000);
            let shards =
                try_join_all((0..ID_SHARDS).map(|shard| self.id_shard_page(shard, cursor.as_deref(), per_shard)))
                    .await?;
            // A shard that may hold more has returned every id up to its last one; so has every
            // other shard. Past the lowest such last id, some shard's next ids are unknown yet.
            let bound =
                shards.iter().filter(|(_, more)| *more).filter_map(|(p, _)| p.last().map(|p| p.id.clone())).min();
            let mut merged: Vec<Product> = shards
                .into_iter()
                .flat_map(|(products, _)| products)
                .filter(|p| bound.as_ref().is_none_or(|bound| p.id <= *bound))
                .collect();
            merged.sort_by(|a, b| a.id.cmp(&b.id));
            merged.truncate(need);
            if let Some(last) = merged.last() {
                cursor = Some(last.id.clone());
            }
            page.extend(merged);
            if bound.is_none() {
                break;
            }
        }
        Ok(page)
    }

    async fn set_availability(&self, sku: &str, available: i64, version: i64) -> Result<Option<Product>, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_set_availability(sku, available, version)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.tables.products)
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            count += u64::try_from(out.count()).unwrap_or_default();
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }
}

/// The items of `items` grouped so that items sharing an id or a SKU are in one group (each in the
/// order given); the groups in the order of their first item.
fn related_groups(items: &[(Product, Event)]) -> Vec<Vec<usize>> {
    fn root(parents: &mut [usize], mut i: usize) -> usize {
        while parents[i] != i {
            parents[i] = parents[parents[i]];
            i = parents[i];
        }
        i
    }
    let mut parents: Vec<usize> = (0..items.len()).collect();
    let mut first_with: HashMap<(bool, &str), usize> = HashMap::new();
    for (i, (product, _)) in items.iter().enumerate() {
        let keys = std::iter::once((true, product.id.as_str()))
            .chain(product.variants.iter().map(|v| (false, v.sku.as_str())));
        for key in keys {
            match first_with.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parents, i), root(&mut parents, j));
                    parents[a.max(b)] = a.min(b);
                }
                None => {
                    first_with.insert(key, i);
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    for i in 0..items.len() {
        let r = root(&mut parents, i);
        let g = *group_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn product(id: &str, skus: &[&str]) -> Product {
        Product {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            brand: "Acme".into(),
            category_id: "c".into(),
            price: Money::new(100, "USD"),
            images: vec![],
            attributes: BTreeMap::new(),
            variants: skus
                .iter()
                .map(|sku| Variant {
                    sku: (*sku).into(),
                    price: Money::new(100, "USD"),
                    attributes: BTreeMap::new(),
                    weight_grams: None,
                })
                .collect(),
            tax_category: Default::default(),
            in_stock: false,
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            updated_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_456).unwrap(),
            revision: 0,
        }
    }

    #[test]
    fn a_product_survives_its_item() {
        let mut original = product("p1", &["A", "B"]);
        original.attributes.insert("colour".into(), serde_json::json!("red"));
        original.images.push("https://cdn/x.jpg".into());
        let item = product_to_item(&original, 1, 3, 7, original.created_at.timestamp_millis());
        let mut back = product_from_item("t", &item).unwrap();
        assert!(back.in_stock);
        back.in_stock = false;
        assert_eq!(back, original);
        assert_eq!(item["CategoryCurrency"], s("c#USD"));
    }

    #[test]
    fn id_shards_are_stable_and_spread() {
        assert_eq!(id_shard("p1"), id_shard("p1"));
        let used: HashSet<u64> = (0..1000).map(|i| id_shard(&format!("p{i}"))).collect();
        assert_eq!(used.len() as u64, ID_SHARDS);
    }

    #[test]
    fn items_sharing_an_id_or_a_sku_are_written_in_order_by_one_writer() {
        let event = Event::new("t.v1", "product", serde_json::json!({}));
        let items: Vec<(Product, Event)> = [
            product("a", &["A1"]),
            product("b", &["B1"]),
            product("c", &["B1", "C1"]),
            product("a", &["A2"]),
            product("d", &["D1"]),
        ]
        .into_iter()
        .map(|p| (p, event.clone()))
        .collect();
        assert_eq!(related_groups(&items), vec![vec![0, 3], vec![1, 2], vec![4]]);
    }
}
