//! The DynamoDB order store: carts and orders, keyed as the reference design has them.
//!
//! Tables (all on-demand, named `{prefix}…`; [`DynamoOrderStore::create_tables`] makes them):
//!
//! | table | key | items |
//! |---|---|---|
//! | `orders` | `CustomerID` (S), `OrderKey` (S) = `OrderDate#OrderID` | the order: `OrderID`, `OrderStatus`, `Items`, `ShippingAddress` and `History` (JSON), `TotalAmount`, `Currency`, `PaymentMethod`, `LabelUrl`, `TrackingNumber`, `Deadline` and `DeadlineShard` while a step waits, `StatusShard`, `CreatedAt`, `UpdatedAt`, `Version` |
//! | `order-keys` | `Key` (S) | `order#{id}` → where order `id` is (`CustomerID`, `OrderKey`); `idem#{customer}#{key}` → the order a shopper's idempotency key placed, with the request's hash; `redeem#{promotion}` and `redeem#{promotion}#{customer}` → how often a promotion is used (`Used`), in all and by a shopper |
//! | `carts` | `CartID` (S) | a cart: `OwnerID`, `Currency`, `Lines` (JSON), `Version`, `UpdatedAt`, `AbandonedAt`, `IdleShard` while it has lines and was not reported; and `owner#{user}` → the user's cart id (`Cart`) |
//! | `order-outbox` | `Service` (S), `Seq` (N) | the events the writes recorded, for the relay |
//! | `order-settings` | `Kind` (S), `Id` (S) | the pricing engine's settings ([`pricing`]): `zone` and `promotion` items (`Body` as JSON, `CreatedAt`, `Version`) and `code` items (a code's promotion, `PromotionID`), which keep codes unique |
//!
//! `OrderDate` is the order id's own time (its UUIDv7 timestamp), so a shopper's orders are one
//! `Query` newest first, and a page's cursor (an order id) gives the sort key to go on from without
//! a read. Indexes on `orders`: `by-status-shard` (`StatusShard` = `{status}#{shard}`,
//! `OrderID`), the fulfillment queue, oldest first, merged from its 16 shards (one key per status
//! would put every pending order under one partition key); and the sparse `by-deadline` (`DeadlineShard`, `Deadline`), which only orders
//! waiting on a saga step carry, for the timeout sweeper. On `carts`, the sparse `idle-carts`
//! (`IdleShard`, `UpdatedAt`) finds carts left idle. Both sparse indexes spread writes over 16
//! shards (a hash of the id).
//!
//! Every change is one `TransactWriteItems` with its outbox events, conditional on the `Version`
//! the writer read (or on the item being new), and retried from a fresh read when another writer
//! got in between. Placing an order writes the order, both keys, the emptied cart and the events in
//! one transaction: the idempotency key's condition makes a second placement with the same key
//! lose, and it then answers with the order the first one placed.

mod pricing;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{Delete, Put, ScalarAttributeType, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use platform::dynamodb::{
    self, Attempt, Attrs, Committed, DynamoError, DynamoOutbox, Item, MAX_ATTEMPTS, TableSpec, Transaction,
    failed_condition, n, race_only, retrying, s, transact,
};
use platform::events::Event;
use platform::events::outbox::OutboxSignal;
use platform::money::Money;

use super::{Advance, CartStore, OrderStore, Placed, StoreError};
use crate::domain::order::{Order, OrderStatus, guest_customer_id, id_time, stamp};
use crate::domain::refund::Refund;
use crate::domain::{Cart, new_cart_id};

/// The orders index by status, sharded: `StatusShard` = `{status}#{shard:02}`, `OrderID`.
const STATUS_INDEX: &str = "by-status-shard";

fn status_shard(status: OrderStatus, shard: u64) -> String {
    format!("{}#{shard:02}", status.as_str())
}

/// Shards of the sparse `by-deadline` and `idle-carts` indexes.
pub const SHARDS: u64 = 16;

/// The `Service` key of this service's outbox items.
const OUTBOX_SERVICE: &str = crate::NAME;

/// The `CartID` prefix of a user's pointer to their cart (cart ids are hex, so never clash).
const OWNER: &str = "owner#";

fn sdk(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    DynamoError::sdk(error).into()
}

fn json(value: &impl serde::Serialize) -> aws_sdk_dynamodb::types::AttributeValue {
    s(serde_json::to_string(value).expect("order parts serialize"))
}

/// The table names of one deployment.
#[derive(Debug)]
struct Tables {
    orders: String,
    keys: String,
    carts: String,
    outbox: String,
    /// Shipping zones and promotions (`Kind`, `Id`).
    settings: String,
}

/// Carts and orders in DynamoDB (see the module documentation for the design).
#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    tables: Arc<Tables>,
    outbox: DynamoOutbox,
    signal: OutboxSignal,
}

/// The sort key of an order: `OrderDate#OrderID`, the date being the id's own time; `None` for
/// an id that is not one of ours.
pub fn order_key(order_id: &str) -> Option<String> {
    let date = id_time(order_id)?;
    Some(format!("{}#{order_id}", date.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
}

fn id_item_key(order_id: &str) -> String {
    format!("order#{order_id}")
}

/// The key of a shopper's idempotency key (the customer id's length first, so no two pairs meet).
fn idempotency_item_key(customer_id: &str, key: &str) -> String {
    format!("idem#{}#{customer_id}#{key}", customer_id.len())
}

/// What one transaction item is, to read its cancellation reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    IdempotencyKey,
    Cart,
    /// A promotion's use count (its id).
    Redemption(usize),
    Other,
}

/// A cart as stored, with what the store keeps beside its lines.
struct StoredCart {
    cart: Cart,
    updated_at: i64,
    abandoned: bool,
}

impl DynamoOrderStore {
    /// The store's readiness check (`/ready`).
    pub fn readiness(&self) -> dynamodb::TableCheck {
        dynamodb::TableCheck::new(self.client.clone(), self.tables.orders.clone())
    }

    /// A store on the tables named `{prefix}orders`, `{prefix}order-keys`, `{prefix}carts`,
    /// `{prefix}order-outbox` and `{prefix}order-settings`.
    pub fn new(client: Client, prefix: &str) -> Self {
        let tables = Tables {
            orders: format!("{prefix}orders"),
            keys: format!("{prefix}order-keys"),
            carts: format!("{prefix}carts"),
            outbox: format!("{prefix}order-outbox"),
            settings: format!("{prefix}order-settings"),
        };
        let outbox = DynamoOutbox::new(client.clone(), tables.outbox.clone(), OUTBOX_SERVICE);
        Self { client, tables: Arc::new(tables), outbox, signal: OutboxSignal::default() }
    }

    /// The store, waking `signal` (its outbox relay's) after each write that recorded events.
    pub fn waking(self, signal: OutboxSignal) -> Self {
        Self { signal, ..self }
    }

    /// The outbox, as the relay reads it.
    pub fn outbox(&self) -> DynamoOutbox {
        self.outbox.clone()
    }

    /// Creates the tables (on-demand capacity) with their indexes and waits until they are active.
    /// Tables that exist already are left as they are.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        use ScalarAttributeType::{N, S};
        let t = &self.tables;
        let specs = [
            TableSpec {
                name: &t.orders,
                key: &[("CustomerID", S), ("OrderKey", S)],
                indexes: &[
                    (STATUS_INDEX, [("StatusShard", S), ("OrderID", S)]),
                    ("by-deadline", [("DeadlineShard", N), ("Deadline", N)]),
                ],
            },
            TableSpec { name: &t.keys, key: &[("Key", S)], indexes: &[] },
            TableSpec {
                name: &t.carts,
                key: &[("CartID", S)],
                indexes: &[("idle-carts", [("IdleShard", N), ("UpdatedAt", N)])],
            },
            dynamodb::outbox_table(&t.outbox),
            TableSpec { name: &t.settings, key: &[("Kind", S), ("Id", S)], indexes: &[] },
        ];
        Ok(dynamodb::create_tables(&self.client, &specs).await?)
    }

    async fn get_item(&self, table: &str, key: (&str, String)) -> Result<Option<Item>, StoreError> {
        let found = self.client.get_item().table_name(table).key(key.0, s(key.1)).consistent_read(true).send().await;
        Ok(found.map_err(sdk)?.item)
    }

    /// Up to `limit` items of `query`, following its pages.
    async fn query(&self, query: QueryFluentBuilder, limit: usize) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < limit {
            let want = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let out = query.clone().set_exclusive_start_key(start.take()).limit(want).send().await.map_err(sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Gives every order an earlier version wrote without `StatusShard` (its status index was keyed
    /// on the bare status) the attribute, so the sharded status index (the fulfillment queue)
    /// lists it: one scan of the orders and a conditional update each, safe to run while the
    /// service runs and to run again (an order changed meanwhile got the attribute from its
    /// writer, and is left alone). `shop migrate` runs it on DynamoDB. The number of orders given it.
    pub async fn backfill_status_shards(&self) -> Result<u64, StoreError> {
        let mut start = None;
        let mut updated = 0;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tables.orders)
                .filter_expression("attribute_not_exists(StatusShard)")
                .projection_expression("CustomerID, OrderKey, OrderID, OrderStatus")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk)?;
            for item in page.items() {
                let attrs = Attrs::new(&self.tables.orders, item);
                let id = attrs.s("OrderID")?;
                let status =
                    OrderStatus::parse(attrs.s("OrderStatus")?).ok_or_else(|| attrs.malformed("OrderStatus"))?;
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.tables.orders)
                    .key("CustomerID", s(attrs.s("CustomerID")?))
                    .key("OrderKey", s(attrs.s("OrderKey")?))
                    .update_expression("SET StatusShard = :shard")
                    .condition_expression("attribute_not_exists(StatusShard) AND OrderStatus = :status")
                    .expression_attribute_values(":shard", s(status_shard(status, dynamodb::shard_of(id, SHARDS))))
                    .expression_attribute_values(":status", s(status.as_str()))
                    .send()
                    .await;
                match result {
                    Ok(_) => updated += 1,
                    // Its writer changed it since the scan, and set the attribute.
                    Err(error)
                        if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(error) => return Err(sdk(error)),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(updated),
            }
        }
    }

    // Orders.

    fn order_from(&self, item: &Item) -> Result<(Order, i64), StoreError> {
        let attrs = Attrs::new(&self.tables.orders, item);
        let time = |name: &'static str| -> Result<DateTime<Utc>, StoreError> {
            DateTime::from_timestamp_millis(attrs.n(name)?).ok_or_else(|| attrs.malformed(name).into())
        };
        let items: Vec<crate::domain::order::OrderItem> = attrs.json("Items")?;
        let total = Money { amount: attrs.n("TotalAmount")?, currency: attrs.s("Currency")?.to_owned() };
        // Absent on orders placed before the pricing engine: their lines are their total.
        let pricing = if item.contains_key("Pricing") {
            attrs.json("Pricing")?
        } else {
            crate::domain::pricing::Breakdown::of_lines(&items, &total)
        };
        let redemptions = if item.contains_key("Redemptions") { attrs.json("Redemptions")? } else { Vec::new() };
        let refunds = if item.contains_key("Refunds") { attrs.json("Refunds")? } else { Vec::new() };
        let order = Order {
            id: attrs.s("OrderID")?.to_owned(),
            customer_id: attrs.s("CustomerID")?.to_owned(),
            status: OrderStatus::parse(attrs.s("OrderStatus")?).ok_or_else(|| attrs.malformed("OrderStatus"))?,
            items,
            total,
            pricing,
            redemptions,
            shipping_address: attrs.json("ShippingAddress")?,
            payment_method: attrs.s("PaymentMethod")?.to_owned(),
            label_url: attrs.opt_s("LabelUrl").map(Into::into),
            tracking_number: attrs.opt_s("TrackingNumber").map(Into::into),
            history: attrs.json("History")?,
            email: attrs.opt_s("Email").map(Into::into),
            token: attrs.opt_s("Token").map(Into::into),
            refunds,
            deadline: match attrs.opt_n("Deadline")? {
                Some(ms) => Some(DateTime::from_timestamp_millis(ms).ok_or_else(|| attrs.malformed("Deadline"))?),
                None => None,
            },
            created_at: time("CreatedAt")?,
            updated_at: time("UpdatedAt")?,
        };
        Ok((order, attrs.n("Version")?))
    }

    /// The put of `order` at `version`, conditional on the stored version being `version − 1`
    /// (or on there being none, for version 0).
    fn order_put(&self, order: &Order, version: i64) -> Result<TransactWriteItem, StoreError> {
        self.order_put_where(order, version, version == 0)
    }

    /// The put of `order` at `version`, conditional on there being no item at its key (`fresh`)
    /// or on the stored version being `version − 1`.
    fn order_put_where(&self, order: &Order, version: i64, fresh: bool) -> Result<TransactWriteItem, StoreError> {
        let order_key = self.key_of(&order.id)?;
        let mut put = Put::builder()
            .table_name(&self.tables.orders)
            .item("CustomerID", s(&order.customer_id))
            .item("OrderKey", s(order_key))
            .item("OrderID", s(&order.id))
            .item("OrderStatus", s(order.status.as_str()))
            .item("StatusShard", s(status_shard(order.status, dynamodb::shard_of(&order.id, SHARDS))))
            .item("Items", json(&order.items))
            .item("TotalAmount", n(order.total.amount))
            .item("Currency", s(&order.total.currency))
            .item("ShippingAddress", json(&order.shipping_address))
            .item("PaymentMethod", s(&order.payment_method))
            .item("History", json(&order.history))
            .item("Pricing", json(&order.pricing))
            .item("Redemptions", json(&order.redemptions))
            .item("Refunds", json(&order.refunds))
            .item("CreatedAt", n(order.created_at.timestamp_millis()))
            .item("UpdatedAt", n(order.updated_at.timestamp_millis()))
            .item("Version", n(version));
        if let Some(url) = &order.label_url {
            put = put.item("LabelUrl", s(url));
        }
        if let Some(tracking) = &order.tracking_number {
            put = put.item("TrackingNumber", s(tracking));
        }
        if let Some(email) = &order.email {
            put = put.item("Email", s(email));
        }
        if let Some(token) = &order.token {
            put = put.item("Token", s(token));
        }
        if let Some(deadline) = order.deadline {
            put = put
                .item("Deadline", n(deadline.timestamp_millis()))
                .item("DeadlineShard", n(dynamodb::shard_of(&order.id, SHARDS) as i64));
        }
        put = if fresh {
            put.condition_expression("attribute_not_exists(OrderKey)")
        } else {
            put.condition_expression("Version = :v").expression_attribute_values(":v", n(version - 1))
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk)?).build())
    }

    /// The update of a promotion's use count by `by` (1 or −1), below `limit` when it rises.
    fn redemption_update(
        &self,
        promotion_id: &str,
        who: &str,
        by: i64,
        limit: Option<u32>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.keys)
            .key("Key", s(pricing::redemption_key(promotion_id, who)))
            .update_expression("ADD Used :by")
            .expression_attribute_values(":by", n(by));
        update = match (by > 0, limit) {
            (true, Some(limit)) => update
                .condition_expression("attribute_not_exists(Used) OR Used < :limit")
                .expression_attribute_values(":limit", n(i64::from(limit))),
            // Never below zero: a count that is gone (its promotion deleted) stays gone.
            (false, _) => update.condition_expression("Used > :zero").expression_attribute_values(":zero", n(0)),
            (true, None) => update,
        };
        Ok(TransactWriteItem::builder().update(update.build().map_err(sdk)?).build())
    }

    /// The sort key of order `order_id` (an id not of ours is a bug: refused, never stored).
    fn key_of(&self, order_id: &str) -> Result<String, StoreError> {
        Ok(order_key(order_id)
            .ok_or_else(|| DynamoError::Malformed { table: self.tables.orders.clone(), attribute: "OrderID" })?)
    }

    fn key_put(&self, key: String, attributes: Vec<(&str, String)>) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.tables.keys)
            .item("Key", s(key))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", "Key");
        for (name, value) in attributes {
            put = put.item(name, s(value));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk)?).build())
    }

    /// The order at (`customer_id`, `order_key`), with its version.
    async fn read_order(&self, customer_id: &str, order_key: &str) -> Result<Option<(Order, i64)>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .key("CustomerID", s(customer_id))
            .key("OrderKey", s(order_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        found.item.as_ref().map(|item| self.order_from(item)).transpose()
    }

    /// Order `id` with its version, found through its key item.
    async fn find(&self, id: &str) -> Result<Option<(Order, i64)>, StoreError> {
        let Some(item) = self.get_item(&self.tables.keys, ("Key", id_item_key(id))).await? else { return Ok(None) };
        let attrs = Attrs::new(&self.tables.keys, &item);
        self.read_order(attrs.s("CustomerID")?, attrs.s("OrderKey")?).await
    }

    async fn try_place(
        &self,
        order: &Order,
        key: &str,
        request_hash: &str,
        clear_cart: Option<(&str, u64)>,
        events: &[Event],
    ) -> Result<Attempt<Placed>, StoreError> {
        let order_key = self.key_of(&order.id)?;
        let located = || vec![("CustomerID", order.customer_id.clone()), ("OrderKey", order_key.clone())];
        let mut idempotency = located();
        idempotency.extend([("OrderID", order.id.clone()), ("RequestHash", request_hash.to_owned())]);
        let mut tx = Transaction::default();
        tx.push(Role::IdempotencyKey, self.key_put(idempotency_item_key(&order.customer_id, key), idempotency)?);
        tx.push(Role::Other, self.key_put(id_item_key(&order.id), located())?);
        tx.push(Role::Other, self.order_put(order, 0)?);
        if let Some((cart, version)) = clear_cart {
            let update = Update::builder()
                .table_name(&self.tables.carts)
                .key("CartID", s(cart))
                // Emptied of its lines and its codes (they were used); the shipping choice stays.
                .update_expression(
                    "SET #lines = :empty, Codes = :empty, Version = :next, UpdatedAt = :now REMOVE IdleShard",
                )
                .condition_expression("Version = :v")
                .expression_attribute_names("#lines", "Lines")
                .expression_attribute_values(":empty", s("[]"))
                .expression_attribute_values(":v", n(version as i64))
                .expression_attribute_values(":next", n(version as i64 + 1))
                .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
                .build()
                .map_err(sdk)?;
            tx.push(Role::Cart, TransactWriteItem::builder().update(update).build());
        }
        for (i, redemption) in order.redemptions.iter().enumerate() {
            for (who, limit) in redemption.counters() {
                tx.push(Role::Redemption(i), self.redemption_update(&redemption.promotion_id, who, 1, limit)?);
            }
        }
        for event in events {
            tx.push(Role::Other, self.outbox.put(event)?);
        }
        let reasons = match transact(&self.client, tx).await? {
            Committed::Yes => return Ok(Attempt::Done(Placed::New(order.clone()))),
            Committed::No(reasons) => reasons,
        };
        if reasons.iter().any(|(role, reason)| *role == Role::IdempotencyKey && failed_condition(reason)) {
            return Ok(match self.by_key(&order.customer_id, key).await? {
                Some((existing, hash)) if hash == request_hash => Attempt::Done(Placed::Existing(existing)),
                Some(_) => Attempt::Done(Placed::KeyReused),
                None => Attempt::Retry,
            });
        }
        if reasons.iter().any(|(role, reason)| *role == Role::Cart && failed_condition(reason)) {
            return Ok(Attempt::Done(Placed::CartChanged));
        }
        if let Some((Role::Redemption(i), _)) =
            reasons.iter().find(|(role, reason)| matches!(role, Role::Redemption(_)) && failed_condition(reason))
        {
            return Ok(Attempt::Done(Placed::UsedUp(order.redemptions[*i].promotion_id.clone())));
        }
        race_only(reasons.iter().map(|(_, reason)| reason))?;
        Ok(Attempt::Retry)
    }

    async fn try_advance(
        &self,
        id: &str,
        from: &[OrderStatus],
        advance: &Advance,
        events: &[Event],
    ) -> Result<Attempt<Option<Order>>, StoreError> {
        let Some((mut order, version)) = self.find(id).await? else { return Ok(Attempt::Done(None)) };
        if !from.contains(&order.status) {
            return Ok(Attempt::Done(None));
        }
        let was_kept = order.status.is_kept();
        advance.apply(&mut order, stamp(Utc::now()));
        let mut tx = Transaction::default();
        tx.push(Role::Other, self.order_put(&order, version + 1)?);
        if was_kept && !order.status.is_kept() {
            // Failed, rejected or cancelled: its uses of promotions go back, with the move.
            for redemption in &order.redemptions {
                for (who, _) in redemption.counters() {
                    tx.push(Role::Other, self.redemption_update(&redemption.promotion_id, who, -1, None)?);
                }
            }
        }
        for event in events {
            tx.push(Role::Other, self.outbox.put(event)?);
        }
        self.commit(tx, Some(order)).await
    }

    async fn try_refund(
        &self,
        id: &str,
        seen: usize,
        refund: &Refund,
        whole: bool,
        events: &[Event],
    ) -> Result<Attempt<Option<Order>>, StoreError> {
        let Some((mut order, version)) = self.find(id).await? else { return Ok(Attempt::Done(None)) };
        if order.refunds.len() != seen || !matches!(order.status, OrderStatus::Shipped | OrderStatus::Delivered) {
            return Ok(Attempt::Done(None));
        }
        let now = stamp(Utc::now());
        order.refunds.push(refund.clone());
        if whole {
            Advance { steps: vec![(OrderStatus::Refunded, None)], ..Advance::default() }.apply(&mut order, now);
        }
        order.updated_at = now;
        let mut tx = Transaction::default();
        tx.push(Role::Other, self.order_put(&order, version + 1)?);
        for event in events {
            tx.push(Role::Other, self.outbox.put(event)?);
        }
        self.commit(tx, Some(order)).await
    }

    /// Moves a guest's order (read at `version`) to `user_id`'s partition: deleted where it was,
    /// put under the account, its key item pointing there, in one transaction.
    async fn try_claim(&self, order: &Order, version: i64, user_id: &str) -> Result<Attempt<()>, StoreError> {
        let order_key = self.key_of(&order.id)?;
        let delete = Delete::builder()
            .table_name(&self.tables.orders)
            .key("CustomerID", s(&order.customer_id))
            .key("OrderKey", s(&order_key))
            .condition_expression("Version = :v")
            .expression_attribute_values(":v", n(version))
            .build()
            .map_err(sdk)?;
        let moved = Order { customer_id: user_id.to_owned(), ..order.clone() };
        let located = Put::builder()
            .table_name(&self.tables.keys)
            .item("Key", s(id_item_key(&order.id)))
            .item("CustomerID", s(user_id))
            .item("OrderKey", s(order_key))
            .build()
            .map_err(sdk)?;
        let mut tx = Transaction::default();
        tx.push(Role::Other, TransactWriteItem::builder().delete(delete).build());
        tx.push(Role::Other, self.order_put_where(&moved, version + 1, true)?);
        tx.push(Role::Other, TransactWriteItem::builder().put(located).build());
        self.commit(tx, ()).await
    }

    // Carts.

    fn cart_from(&self, item: &Item) -> Result<StoredCart, StoreError> {
        let attrs = Attrs::new(&self.tables.carts, item);
        let version = u64::try_from(attrs.n("Version")?).map_err(|_| attrs.malformed("Version"))?;
        let cart = Cart {
            id: attrs.s("CartID")?.to_owned(),
            owner_id: attrs.opt_s("OwnerID").map(Into::into),
            currency: attrs.s("Currency")?.to_owned(),
            lines: attrs.json("Lines")?,
            version,
            // Absent on carts an earlier version wrote.
            codes: if item.contains_key("Codes") { attrs.json("Codes")? } else { Vec::new() },
            shipping: if item.contains_key("Shipping") { Some(attrs.json("Shipping")?) } else { None },
        };
        Ok(StoredCart { cart, updated_at: attrs.n("UpdatedAt")?, abandoned: attrs.opt_n("AbandonedAt")?.is_some() })
    }

    async fn read_cart(&self, id: &str) -> Result<Option<StoredCart>, StoreError> {
        if id.starts_with(OWNER) {
            return Ok(None);
        }
        let found = self.get_item(&self.tables.carts, ("CartID", id.to_owned())).await?;
        found.as_ref().map(|item| self.cart_from(item)).transpose()
    }

    /// The id of `owner_id`'s cart, if they have one.
    async fn owner_cart_id(&self, owner_id: &str) -> Result<Option<String>, StoreError> {
        let found = self.get_item(&self.tables.carts, ("CartID", format!("{OWNER}{owner_id}"))).await?;
        found.map(|item| Ok(Attrs::new(&self.tables.carts, &item).s("Cart")?.to_owned())).transpose()
    }

    async fn owner_cart(&self, owner_id: &str) -> Result<Option<Cart>, StoreError> {
        let Some(id) = self.owner_cart_id(owner_id).await? else { return Ok(None) };
        let cart = self
            .read_cart(&id)
            .await?
            .ok_or_else(|| DynamoError::Malformed { table: self.tables.carts.clone(), attribute: "Cart" })?;
        Ok(Some(cart.cart))
    }

    /// The put of `cart` (its `version` the new one), conditional on the stored version being the
    /// one before (or on there being none, for version 0). A change clears the abandonment report.
    fn cart_put(&self, cart: &Cart) -> Result<TransactWriteItem, StoreError> {
        let now = Utc::now().timestamp_millis();
        let mut put = Put::builder()
            .table_name(&self.tables.carts)
            .item("CartID", s(&cart.id))
            .item("Currency", s(&cart.currency))
            .item("Lines", json(&cart.lines))
            .item("Codes", json(&cart.codes))
            .item("Version", n(cart.version as i64))
            .item("UpdatedAt", n(now));
        if let Some(owner) = &cart.owner_id {
            put = put.item("OwnerID", s(owner));
        }
        if let Some(shipping) = &cart.shipping {
            put = put.item("Shipping", json(shipping));
        }
        if !cart.lines.is_empty() {
            put = put.item("IdleShard", n(dynamodb::shard_of(&cart.id, SHARDS) as i64));
        }
        put = match cart.version {
            0 => put.condition_expression("attribute_not_exists(CartID)"),
            v => put.condition_expression("Version = :v").expression_attribute_values(":v", n(v as i64 - 1)),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk)?).build())
    }

    fn owner_put(&self, cart: &Cart, owner_id: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.carts)
            .item("CartID", s(format!("{OWNER}{owner_id}")))
            .item("Cart", s(&cart.id))
            .condition_expression("attribute_not_exists(CartID)")
            .build()
            .map_err(sdk)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs `tx`; `Retry` when it lost a race.
    async fn commit<T>(&self, tx: Transaction<Role>, done: T) -> Result<Attempt<T>, StoreError> {
        match transact(&self.client, tx).await? {
            Committed::Yes => Ok(Attempt::Done(done)),
            Committed::No(reasons) => {
                race_only(reasons.iter().map(|(_, reason)| reason))?;
                Ok(Attempt::Retry)
            }
        }
    }

    async fn try_user_cart(&self, owner_id: &str, currency: &str) -> Result<Attempt<Cart>, StoreError> {
        if let Some(cart) = self.owner_cart(owner_id).await? {
            return Ok(Attempt::Done(cart));
        }
        let cart = Cart::new(new_cart_id(), Some(owner_id.to_owned()), currency);
        let mut tx = Transaction::default();
        tx.push(Role::Other, self.owner_put(&cart, owner_id)?);
        tx.push(Role::Cart, self.cart_put(&cart)?);
        self.commit(tx, cart).await
    }

    async fn try_set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Attempt<Option<Cart>>, StoreError> {
        let Some(StoredCart { mut cart, .. }) = self.read_cart(id).await? else { return Ok(Attempt::Done(None)) };
        if !cart.set_line(sku, quantity, max_lines) {
            return Err(StoreError::TooManyLines(max_lines));
        }
        cart.version += 1;
        let mut tx = Transaction::default();
        tx.push(Role::Cart, self.cart_put(&cart)?);
        self.commit(tx, Some(cart)).await
    }

    async fn try_set_details(
        &self,
        id: &str,
        codes: &[String],
        shipping: Option<&crate::domain::ShippingChoice>,
    ) -> Result<Attempt<Option<Cart>>, StoreError> {
        let Some(StoredCart { mut cart, .. }) = self.read_cart(id).await? else { return Ok(Attempt::Done(None)) };
        cart.codes = codes.to_vec();
        cart.shipping = shipping.cloned();
        cart.version += 1;
        let mut tx = Transaction::default();
        tx.push(Role::Cart, self.cart_put(&cart)?);
        self.commit(tx, Some(cart)).await
    }

    async fn try_merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Attempt<Option<Cart>>, StoreError> {
        let Some(guest) = self.read_cart(guest_id).await?.map(|g| g.cart).filter(|g| g.owner_id.is_none()) else {
            return Ok(Attempt::Done(None));
        };
        let mut tx = Transaction::default();
        let mut merged = match self.owner_cart(owner_id).await? {
            Some(mut cart) => {
                cart.version += 1;
                cart
            }
            None => {
                // Made by the merge: version 0, put only if still absent.
                let cart = Cart::new(new_cart_id(), Some(owner_id.to_owned()), currency);
                tx.push(Role::Other, self.owner_put(&cart, owner_id)?);
                cart
            }
        };
        if !merged.absorb(&guest.lines, caps, max_lines) {
            return Err(StoreError::TooManyLines(max_lines));
        }
        merged.absorb_details(&guest);
        tx.push(Role::Cart, self.cart_put(&merged)?);
        let delete = Delete::builder()
            .table_name(&self.tables.carts)
            .key("CartID", s(&guest.id))
            .condition_expression("Version = :v")
            .expression_attribute_values(":v", n(guest.version as i64))
            .build()
            .map_err(sdk)?;
        tx.push(Role::Cart, TransactWriteItem::builder().delete(delete).build());
        self.commit(tx, Some(merged)).await
    }

    /// Reports cart `id` abandoned if it still has lines, was not reported, and has not changed
    /// since `before`; whether it did.
    async fn abandon_one(&self, id: &str, before: i64) -> Result<bool, StoreError> {
        let Some(stored) = self.read_cart(id).await? else { return Ok(false) };
        if stored.cart.lines.is_empty() || stored.abandoned || stored.updated_at >= before {
            return Ok(false);
        }
        let idle_since = DateTime::from_timestamp_millis(stored.updated_at).unwrap_or_default();
        let update = Update::builder()
            .table_name(&self.tables.carts)
            .key("CartID", s(id))
            .update_expression("SET AbandonedAt = :now REMOVE IdleShard")
            .condition_expression("Version = :v AND attribute_not_exists(AbandonedAt)")
            .expression_attribute_values(":v", n(stored.cart.version as i64))
            .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
            .build()
            .map_err(sdk)?;
        let mut tx = Transaction::default();
        tx.push(Role::Cart, TransactWriteItem::builder().update(update).build());
        tx.push(Role::Other, self.outbox.put(&super::abandoned(&stored.cart, idle_since))?);
        Ok(matches!(self.commit(tx, ()).await?, Attempt::Done(())))
    }

    /// Up to `limit` items of each shard of the sparse `index` whose sort key `sort` is within
    /// `condition` (`:bound`), ordered by it.
    async fn sharded(
        &self,
        table: &str,
        index: &str,
        (shard, sort): (&'static str, &'static str),
        condition: &str,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let queries = (0..SHARDS).map(|k| {
            let query = self
                .client
                .query()
                .table_name(table)
                .index_name(index)
                .key_condition_expression(format!("#shard = :shard AND #sort {condition} :bound"))
                .expression_attribute_names("#shard", shard)
                .expression_attribute_names("#sort", sort)
                .expression_attribute_values(":shard", n(k as i64))
                .expression_attribute_values(":bound", n(bound))
                .scan_index_forward(true);
            self.query(query, limit)
        });
        let mut items: Vec<Item> = try_join_all(queries).await?.into_iter().flatten().collect();
        let key = |item: &Item| Attrs::new(table, item).n(sort).unwrap_or(i64::MAX);
        items.sort_by_key(key);
        items.truncate(limit);
        Ok(items)
    }
}

#[async_trait]
impl OrderStore for DynamoOrderStore {
    async fn place(
        &self,
        order: &Order,
        key: &str,
        request_hash: &str,
        clear_cart: Option<(&str, u64)>,
        events: &[Event],
    ) -> Result<Placed, StoreError> {
        let placed = retrying(MAX_ATTEMPTS, || self.try_place(order, key, request_hash, clear_cart, events)).await?;
        self.signal.wake_if(!events.is_empty() && matches!(placed, Placed::New(_)));
        Ok(placed)
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.find(id).await?.map(|(order, _)| order))
    }

    async fn by_key(&self, customer_id: &str, key: &str) -> Result<Option<(Order, String)>, StoreError> {
        let found = self.get_item(&self.tables.keys, ("Key", idempotency_item_key(customer_id, key))).await?;
        let Some(item) = found else { return Ok(None) };
        let attrs = Attrs::new(&self.tables.keys, &item);
        let order = self.read_order(attrs.s("CustomerID")?, attrs.s("OrderKey")?).await?;
        Ok(order.map(|(order, _)| (order, attrs.s("RequestHash").unwrap_or_default().to_owned())))
    }

    async fn by_customer(
        &self,
        customer_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .expression_attribute_values(":c", s(customer_id))
            .consistent_read(true)
            .scan_index_forward(false);
        query = match before {
            None => query.key_condition_expression("CustomerID = :c"),
            Some(before) => {
                // A cursor that is no order id of ours has nothing before it.
                let Some(key) = order_key(before) else { return Ok(Vec::new()) };
                query
                    .key_condition_expression("CustomerID = :c AND OrderKey < :k")
                    .expression_attribute_values(":k", s(key))
            }
        };
        self.query(query, limit).await?.iter().map(|item| Ok(self.order_from(item)?.0)).collect()
    }

    async fn by_status(
        &self,
        status: OrderStatus,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        // Each shard's first `limit` after the cursor, merged by id (ids are time-ordered).
        let queries = (0..SHARDS).map(|shard| {
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .index_name(STATUS_INDEX)
                .expression_attribute_values(":s", s(status_shard(status, shard)))
                .scan_index_forward(true);
            query = match after {
                None => query.key_condition_expression("StatusShard = :s"),
                Some(after) => query
                    .key_condition_expression("StatusShard = :s AND OrderID > :a")
                    .expression_attribute_values(":a", s(after)),
            };
            self.query(query, limit)
        });
        let mut orders = Vec::new();
        for item in try_join_all(queries).await?.iter().flatten() {
            orders.push(self.order_from(item)?.0);
        }
        orders.sort_by(|a, b| a.id.cmp(&b.id));
        orders.truncate(limit);
        Ok(orders)
    }

    async fn advance(
        &self,
        id: &str,
        from: &[OrderStatus],
        advance: &Advance,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError> {
        let moved = retrying(MAX_ATTEMPTS, || self.try_advance(id, from, advance, events)).await?;
        self.signal.wake_if(!events.is_empty() && moved.is_some());
        Ok(moved)
    }

    async fn refund(
        &self,
        id: &str,
        seen: usize,
        refund: &Refund,
        whole: bool,
        events: &[Event],
    ) -> Result<Option<Order>, StoreError> {
        let done = retrying(MAX_ATTEMPTS, || self.try_refund(id, seen, refund, whole, events)).await?;
        self.signal.wake_if(!events.is_empty() && done.is_some());
        Ok(done)
    }

    async fn claim_guest_orders(&self, email: &str, user_id: &str) -> Result<usize, StoreError> {
        let guest = guest_customer_id(email);
        let mut claimed = 0;
        loop {
            // A page at a time: each claimed order leaves the guest's partition.
            let query = self
                .client
                .query()
                .table_name(&self.tables.orders)
                .key_condition_expression("CustomerID = :c")
                .expression_attribute_values(":c", s(&guest))
                .consistent_read(true);
            let page = self.query(query, 100).await?;
            if page.is_empty() {
                return Ok(claimed);
            }
            for item in &page {
                let key = self.key_of(Attrs::new(&self.tables.orders, item).s("OrderID")?)?;
                let moved = retrying(MAX_ATTEMPTS, || async {
                    // Read again: what the claim moves is the order as it is now.
                    match self.read_order(&guest, &key).await? {
                        Some((order, version)) => Ok(match self.try_claim(&order, version, user_id).await? {
                            Attempt::Done(()) => Attempt::Done(true),
                            Attempt::Retry => Attempt::Retry,
                        }),
                        None => Ok::<_, StoreError>(Attempt::Done(false)),
                    }
                })
                .await?;
                claimed += usize::from(moved);
            }
        }
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Order>, StoreError> {
        let now = now.timestamp_millis();
        let listed =
            self.sharded(&self.tables.orders, "by-deadline", ("DeadlineShard", "Deadline"), "<=", now, limit).await?;
        // The index lags the table: keep only orders a strongly consistent read still shows due.
        let reads = listed.iter().map(|item| async move {
            let attrs = Attrs::new(&self.tables.orders, item);
            self.read_order(attrs.s("CustomerID")?, attrs.s("OrderKey")?).await
        });
        Ok(try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(order, _)| order)
            .filter(|order| order.deadline.is_some_and(|d| d.timestamp_millis() <= now))
            .collect())
    }
}

#[async_trait]
impl CartStore for DynamoOrderStore {
    async fn create(&self, cart: &Cart) -> Result<(), StoreError> {
        retrying(MAX_ATTEMPTS, || async {
            let mut tx = Transaction::default();
            if let Some(owner) = &cart.owner_id {
                tx.push(Role::Other, self.owner_put(cart, owner)?);
            }
            tx.push(Role::Cart, self.cart_put(&Cart { version: 0, ..cart.clone() })?);
            match transact(&self.client, tx).await? {
                Committed::Yes => Ok(Attempt::Done(())),
                Committed::No(reasons) if reasons.iter().any(|(_, reason)| failed_condition(reason)) => {
                    Err(StoreError::Backend(Box::new(DynamoError::Cancelled {
                        code: "ConditionalCheckFailed".into(),
                        message: format!("cart {} (or its owner's cart) exists", cart.id),
                    })))
                }
                Committed::No(reasons) => {
                    race_only(reasons.iter().map(|(_, reason)| reason))?;
                    Ok(Attempt::Retry)
                }
            }
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Cart>, StoreError> {
        Ok(self.read_cart(id).await?.map(|stored| stored.cart))
    }

    async fn user_cart(&self, owner_id: &str, currency: &str) -> Result<Cart, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_user_cart(owner_id, currency)).await
    }

    async fn set_quantity(
        &self,
        id: &str,
        sku: &str,
        quantity: i64,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_set_quantity(id, sku, quantity, max_lines)).await
    }

    async fn set_details(
        &self,
        id: &str,
        codes: &[String],
        shipping: Option<&crate::domain::ShippingChoice>,
    ) -> Result<Option<Cart>, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_set_details(id, codes, shipping)).await
    }

    async fn abandon(&self, before: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let before = before.timestamp_millis();
        let listed =
            self.sharded(&self.tables.carts, "idle-carts", ("IdleShard", "UpdatedAt"), "<", before, limit).await?;
        let mut reported = 0;
        for item in &listed {
            let id = Attrs::new(&self.tables.carts, item).s("CartID")?;
            // One cart that cannot be reported now does not hold up the others.
            match self.abandon_one(id, before).await {
                Ok(true) => reported += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(cart = id, error = %platform::error::cause_chain(&error), "could not report an idle cart")
                }
            }
        }
        self.signal.wake_if(reported > 0);
        Ok(reported)
    }

    async fn merge(
        &self,
        guest_id: &str,
        owner_id: &str,
        currency: &str,
        caps: &HashMap<String, i64>,
        max_lines: usize,
    ) -> Result<Option<Cart>, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_merge(guest_id, owner_id, currency, caps, max_lines)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_orders_sort_key_is_its_date_and_id_and_sorts_as_the_ids_do() {
        let ids: Vec<String> = (0..50).map(|_| crate::domain::order::new_order_id()).collect();
        let keys: Vec<String> = ids.iter().map(|id| order_key(id).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let (date, id) = keys[0].split_once('#').unwrap();
        assert_eq!(id, ids[0]);
        assert!(DateTime::parse_from_rfc3339(date).is_ok(), "{date}");
        assert_eq!(order_key("ord_none"), None);
    }

    #[test]
    fn idempotency_keys_of_different_shoppers_never_meet() {
        assert_ne!(idempotency_item_key("a#b", "c"), idempotency_item_key("a", "b#c"));
    }
}
