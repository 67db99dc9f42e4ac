//! The DynamoDB pricing store: zones and promotions as JSON documents in `order-settings` (one
//! `Kind` a query lists), codes kept unique by a `code` item written in the same transaction as
//! its promotion, and use counts in `order-keys` beside the idempotency keys (placing an order
//! changes them in its own transaction).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem};
use platform::dynamodb::{
    Attempt, Attrs, Committed, MAX_ATTEMPTS, Transaction, failed_condition, n, retrying, s, transact,
};

use super::{DynamoOrderStore, sdk};
use crate::domain::pricing::Usage;
use crate::domain::promotion::Promotion;
use crate::domain::shipping::Zone;
use crate::store::{EVERYONE, PricingStore, StoreError};

const ZONE: &str = "zone";
const PROMOTION: &str = "promotion";
const CODE: &str = "code";

/// The `order-keys` key of a promotion's use count, in all or by `customer`.
pub(super) fn redemption_key(promotion_id: &str, customer: &str) -> String {
    if customer == EVERYONE { format!("redeem#{promotion_id}") } else { format!("redeem#{promotion_id}#{customer}") }
}

/// What a write of a promotion touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Promotion,
    Code,
    OldCode,
}

impl DynamoOrderStore {
    /// Every item of `kind`, with its body parsed, oldest first.
    async fn documents<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.settings)
            .key_condition_expression("Kind = :k")
            .expression_attribute_values(":k", s(kind))
            .consistent_read(true);
        let items = self.query(query, usize::MAX).await?;
        let mut found = Vec::with_capacity(items.len());
        for item in &items {
            let attrs = Attrs::new(&self.tables.settings, item);
            let body: T = attrs.json("Body")?;
            found.push((attrs.n("CreatedAt")?, attrs.s("Id")?.to_owned(), body));
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(found.into_iter().map(|(_, _, body)| body).collect())
    }

    fn setting_key(&self, kind: &str, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("Kind".to_owned(), s(kind)), ("Id".to_owned(), s(id))])
    }

    /// The stored promotion `id` with its version.
    async fn stored_promotion(&self, id: &str) -> Result<Option<(Promotion, i64)>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.settings)
            .set_key(Some(self.setting_key(PROMOTION, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let Some(item) = found.item else { return Ok(None) };
        let attrs = Attrs::new(&self.tables.settings, &item);
        Ok(Some((attrs.json("Body")?, attrs.n("Version")?)))
    }

    fn code_item(&self, code: &str, promotion_id: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.settings)
            .item("Kind", s(CODE))
            .item("Id", s(code))
            .item("PromotionID", s(promotion_id))
            .condition_expression("attribute_not_exists(Id) OR PromotionID = :p")
            .expression_attribute_values(":p", s(promotion_id))
            .build()
            .map_err(sdk)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn try_put_promotion(&self, promotion: &Promotion, new: bool) -> Result<Attempt<bool>, StoreError> {
        let current = if new { None } else { self.stored_promotion(&promotion.id).await? };
        if !new && current.is_none() {
            return Ok(Attempt::Done(false));
        }
        let version = current.as_ref().map_or(0, |(_, v)| *v);
        let mut put = Put::builder()
            .table_name(&self.tables.settings)
            .item("Kind", s(PROMOTION))
            .item("Id", s(&promotion.id))
            .item("Body", s(serde_json::to_string(promotion).map_err(sdk)?))
            .item("CreatedAt", n(promotion.created_at.timestamp_micros()))
            .item("Version", n(version + 1));
        put = if new {
            put.condition_expression("attribute_not_exists(Id)")
        } else {
            put.condition_expression("Version = :v").expression_attribute_values(":v", n(version))
        };
        let mut tx = Transaction::default();
        tx.push(Role::Promotion, TransactWriteItem::builder().put(put.build().map_err(sdk)?).build());
        let old_code = current.as_ref().and_then(|(p, _)| p.code.clone());
        if let Some(code) = &promotion.code {
            tx.push(Role::Code, self.code_item(code, &promotion.id)?);
        }
        if let Some(old) = old_code.filter(|old| promotion.code.as_ref() != Some(old)) {
            let delete = Delete::builder()
                .table_name(&self.tables.settings)
                .set_key(Some(self.setting_key(CODE, &old)))
                .build()
                .map_err(sdk)?;
            tx.push(Role::OldCode, TransactWriteItem::builder().delete(delete).build());
        }
        match transact(&self.client, tx).await? {
            Committed::Yes => Ok(Attempt::Done(true)),
            Committed::No(reasons) => {
                if reasons.iter().any(|(role, reason)| *role == Role::Code && failed_condition(reason)) {
                    return Err(StoreError::CodeTaken(promotion.code.clone().unwrap_or_default()));
                }
                if new && reasons.iter().any(|(role, reason)| *role == Role::Promotion && failed_condition(reason)) {
                    return Ok(Attempt::Done(false));
                }
                // Another admin changed it since it was read, or a race on the transaction.
                Ok(Attempt::Retry)
            }
        }
    }

    async fn try_delete_promotion(&self, id: &str) -> Result<Attempt<bool>, StoreError> {
        let Some((promotion, version)) = self.stored_promotion(id).await? else { return Ok(Attempt::Done(false)) };
        let mut tx = Transaction::default();
        let delete = Delete::builder()
            .table_name(&self.tables.settings)
            .set_key(Some(self.setting_key(PROMOTION, id)))
            .condition_expression("Version = :v")
            .expression_attribute_values(":v", n(version))
            .build()
            .map_err(sdk)?;
        tx.push(Role::Promotion, TransactWriteItem::builder().delete(delete).build());
        if let Some(code) = &promotion.code {
            let delete = Delete::builder()
                .table_name(&self.tables.settings)
                .set_key(Some(self.setting_key(CODE, code)))
                .build()
                .map_err(sdk)?;
            tx.push(Role::Code, TransactWriteItem::builder().delete(delete).build());
        }
        match transact(&self.client, tx).await? {
            Committed::Yes => Ok(Attempt::Done(true)),
            // Changed or deleted since it was read: as it is now.
            Committed::No(_) => Ok(Attempt::Retry),
        }
    }
}

#[async_trait]
impl PricingStore for DynamoOrderStore {
    async fn zones(&self) -> Result<Vec<Zone>, StoreError> {
        self.documents(ZONE).await
    }

    async fn put_zone(&self, zone: &Zone) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.settings)
            .set_key(Some(self.setting_key(ZONE, &zone.id)))
            .update_expression("SET Body = :b, CreatedAt = if_not_exists(CreatedAt, :now)")
            .expression_attribute_values(":b", s(serde_json::to_string(zone).map_err(sdk)?))
            .expression_attribute_values(":now", n(chrono::Utc::now().timestamp_micros()))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn delete_zone(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.tables.settings)
            .set_key(Some(self.setting_key(ZONE, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk)?;
        Ok(deleted.attributes.is_some_and(|old| !old.is_empty()))
    }

    async fn promotions(&self) -> Result<Vec<Promotion>, StoreError> {
        self.documents(PROMOTION).await
    }

    async fn put_promotion(&self, promotion: &Promotion, new: bool) -> Result<bool, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_put_promotion(promotion, new)).await
    }

    async fn delete_promotion(&self, id: &str) -> Result<bool, StoreError> {
        retrying(MAX_ATTEMPTS, || self.try_delete_promotion(id)).await
    }

    async fn usage(&self, ids: &[String], customer: Option<&str>) -> Result<HashMap<String, Usage>, StoreError> {
        let mut usage: HashMap<String, Usage> = ids.iter().map(|id| (id.clone(), Usage::default())).collect();
        let mut wanted: Vec<(String, String, bool)> = Vec::new();
        for id in ids {
            wanted.push((redemption_key(id, EVERYONE), id.clone(), true));
            if let Some(who) = customer {
                wanted.push((redemption_key(id, who), id.clone(), false));
            }
        }
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        for chunk in wanted.chunks(100) {
            let mut keys = KeysAndAttributes::builder().consistent_read(true);
            for (key, _, _) in chunk {
                keys = keys.keys(HashMap::from([("Key".to_owned(), s(key))]));
            }
            let mut request = HashMap::from([(self.tables.keys.clone(), keys.build().map_err(sdk)?)]);
            while !request.is_empty() {
                let out = self.client.batch_get_item().set_request_items(Some(request)).send().await.map_err(sdk)?;
                for item in out.responses.unwrap_or_default().remove(&self.tables.keys).unwrap_or_default() {
                    let attrs = Attrs::new(&self.tables.keys, &item);
                    let key = attrs.s("Key")?;
                    let used = u64::try_from(attrs.n("Used")?).unwrap_or(0);
                    if let Some((_, id, everyone)) = chunk.iter().find(|(k, _, _)| k == key) {
                        let entry = usage.entry(id.clone()).or_default();
                        if *everyone {
                            entry.total = used;
                        } else {
                            entry.by_shopper = used;
                        }
                    }
                }
                request = out.unprocessed_keys.unwrap_or_default();
            }
        }
        Ok(usage)
    }
}
