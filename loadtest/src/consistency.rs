//! The check after a run: the platform must account for everything the journeys did.
//!
//! - Every order settles, and no order anywhere in the shop is left mid-saga.
//! - Every order ended as its payment method and stock say it must: paid with `pm_card_visa`, it
//!   ships (or, holding a doorbuster that sold out, is rejected); paid with a declining method, it
//!   fails its payment (or is rejected first). None is cancelled: nothing in the journeys cancels.
//! - Payments captured = orders confirmed: an order that was confirmed and kept has one captured
//!   payment; any other order's payment, if it has one, failed, was voided or refunded (the
//!   platform's own rules, `platform::contracts::reconcile`, as `shop reconcile` applies them).
//! - Stock is conserved: for each SKU the shoppers bought, on hand now = the stock it started with +
//!   the admin's restocks − the units of kept orders; nothing stays reserved. (Stock commands
//!   trail the order's own status, so a SKU is read again until it balances or time is up.)
//! - No stock anywhere is negative (every SKU of the catalog is read).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use platform::contracts::reconcile::{Expectation, judge_payments};
use serde_json::Value;

use crate::journeys::{SETTLED, Shared};
use crate::shop::Catalog;

/// Statuses of an order that was confirmed and kept (its stock committed, its payment captured).
pub const KEPT: [&str; 3] = ["confirmed", "shipped", "delivered"];

/// Statuses of an order the saga is still working on.
pub const IN_FLIGHT: [&str; 4] = ["pending", "reserved", "paid", "confirmed"];

/// What the check found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Findings {
    /// Orders the run placed, by final status.
    pub orders: BTreeMap<String, usize>,
    /// Orders confirmed and kept.
    pub confirmed: usize,
    /// Payments captured for the run's orders.
    pub captured: usize,
    /// SKUs whose stock was balanced against the orders.
    pub skus_balanced: usize,
    /// SKUs of the whole catalog read for negative stock.
    pub skus_scanned: usize,
    /// Everything that does not add up; empty when the platform is consistent.
    pub problems: Vec<String>,
}

impl Findings {
    /// Whether everything adds up.
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }

    /// Orders that completed (kept), and all the run placed.
    pub fn completed_orders(&self) -> usize {
        KEPT.iter().map(|s| self.orders.get(*s).copied().unwrap_or(0)).sum()
    }
}

/// How many admin reads run at once.
const PARALLEL: usize = 8;

/// `GET`s the path of each of `keys` as the admin, [`PARALLEL`] at a time; each key with its answer.
async fn read_all(
    shared: &Shared,
    keys: Vec<String>,
    path: impl Fn(&str) -> String,
) -> Vec<(String, anyhow::Result<Value>)> {
    futures::stream::iter(keys)
        .map(|key| {
            let path = path(&key);
            async move {
                let answer = shared.admin.get(&path).await;
                (key, answer)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await
}

/// Checks the platform after the journeys stopped, giving orders up to `settle` to settle.
pub async fn check(shared: &Arc<Shared>, settle: Duration) -> Findings {
    let mut findings = Findings::default();
    findings.problems.extend(shared.tally.problems.lock().expect("not poisoned").iter().cloned());
    let placed = shared.tally.orders.lock().expect("not poisoned").clone();
    if placed.is_empty() {
        findings.problems.push("no order was placed: the buy journey never reached checkout".to_owned());
    }
    let methods: HashMap<&str, &str> = placed.iter().map(|(id, method)| (id.as_str(), *method)).collect();
    let doorbusters: Vec<&str> = shared.catalog.hot.iter().take(Catalog::DOORBUSTERS).map(|h| h.sku.as_str()).collect();

    // 1. Every order settles.
    let deadline = Instant::now() + settle;
    let mut orders: HashMap<String, Value> = HashMap::new();
    let mut pending: Vec<String> = placed.iter().map(|(id, _)| id.clone()).collect();
    loop {
        let read: Vec<(String, anyhow::Result<Value>)> =
            read_all(shared, std::mem::take(&mut pending), |id| format!("/v1/orders/{id}")).await;
        for (id, order) in read {
            match order {
                Ok(order) => {
                    if !order["status"].as_str().is_some_and(|s| SETTLED.contains(&s)) {
                        pending.push(id.clone());
                    }
                    orders.insert(id, order);
                }
                Err(e) => {
                    findings.problems.push(format!("order {id} cannot be read: {e:#}"));
                }
            }
        }
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for id in &pending {
        let status = orders.get(id).and_then(|o| o["status"].as_str()).unwrap_or("unknown");
        findings.problems.push(format!("order {id} did not settle within {settle:?}: still {status}"));
    }
    for status in IN_FLIGHT {
        match shared.admin.get(&format!("/admin/v1/orders?status={status}&limit=100")).await {
            Ok(list) => {
                let stuck: Vec<&str> = list["items"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|o| o["id"].as_str()).collect())
                    .unwrap_or_default();
                let others: Vec<&&str> = stuck.iter().filter(|id| !pending.iter().any(|p| p == **id)).collect();
                if !others.is_empty() {
                    findings
                        .problems
                        .push(format!("{} other order(s) of the shop still {status}: {others:?}", others.len()));
                }
            }
            Err(e) => findings.problems.push(format!("the {status} orders cannot be listed: {e:#}")),
        }
    }
    for (id, order) in &orders {
        let status = order["status"].as_str().unwrap_or("unknown");
        *findings.orders.entry(status.to_owned()).or_default() += 1;
        if pending.contains(id) {
            continue;
        }
        let method = methods.get(id.as_str()).copied().unwrap_or("unknown");
        let doorbuster = order["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|line| line["sku"].as_str().is_some_and(|sku| doorbusters.contains(&sku)));
        // An order of free items has nothing to charge: it ships whatever card it named.
        let free = order["total"]["amount"].as_i64() == Some(0);
        let allowed: &[&str] = match (method == "pm_card_visa" || free, doorbuster) {
            (true, false) => &KEPT,
            (true, true) => &["confirmed", "shipped", "delivered", "rejected"],
            (false, false) => &["payment_failed"],
            (false, true) => &["payment_failed", "rejected"],
        };
        if !allowed.contains(&status) {
            let reason = order["history"].as_array().and_then(|h| h.last()).map(|h| h.to_string()).unwrap_or_default();
            findings.problems.push(format!(
                "order {id} paid with {method}{} ended {status} (last step {reason}); expected one of {allowed:?}",
                if doorbuster { " with a doorbuster" } else { "" }
            ));
        }
    }

    // 2. Payments captured = orders confirmed.
    let payments: Vec<(String, anyhow::Result<Value>)> =
        read_all(shared, orders.keys().cloned().collect::<Vec<_>>(), |id| format!("/admin/v1/payments?order_id={id}"))
            .await;
    for (id, listed) in payments {
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                findings.problems.push(format!("the payments of {id} cannot be read: {e:#}"));
                continue;
            }
        };
        let statuses: Vec<&str> =
            listed["items"].as_array().into_iter().flatten().filter_map(|p| p["status"].as_str()).collect();
        let captured = statuses.iter().filter(|s| **s == "captured").count();
        let status = orders[&id]["status"].as_str().unwrap_or("unknown");
        let kept = KEPT.contains(&status);
        findings.captured += captured;
        findings.confirmed += usize::from(kept);
        // The platform's own rules (`shop reconcile`, the order service's audit); a confirmed order
        // is kept too here, since the run has settled.
        let expect = if kept { Some(Expectation::Kept) } else { Expectation::of(status) };
        let total = orders[&id]["total"]["amount"].as_i64().unwrap_or(0);
        if let Some(finding) = expect.and_then(|expect| judge_payments(expect, total, &statuses)) {
            findings.problems.push(format!("order {id} is {status} with payment(s) {statuses:?}: {}", finding.rule));
        }
    }

    // 3. Stock is conserved on every SKU the shoppers bought.
    let mut sold: HashMap<&str, i64> = HashMap::new();
    for order in orders.values().filter(|o| o["status"].as_str().is_some_and(|s| KEPT.contains(&s))) {
        for line in order["items"].as_array().into_iter().flatten() {
            if let (Some(sku), Some(quantity)) = (line["sku"].as_str(), line["quantity"].as_i64()) {
                *sold.entry(sku).or_default() += quantity;
            }
        }
    }
    let adjustments = shared.tally.adjustments.lock().expect("not poisoned").clone();
    let mut unbalanced: Vec<String> = shared.catalog.initial.keys().cloned().collect();
    let stock_deadline = deadline.max(Instant::now() + Duration::from_secs(10));
    let mut last: HashMap<String, String> = HashMap::new();
    loop {
        let levels: Vec<(String, anyhow::Result<Value>)> =
            read_all(shared, std::mem::take(&mut unbalanced), |sku| format!("/admin/v1/inventory/{sku}")).await;
        for (sku, level) in levels {
            let level = match level {
                Ok(level) => level,
                Err(e) => {
                    findings.problems.push(format!("the stock of {sku} cannot be read: {e:#}"));
                    continue;
                }
            };
            let initial = shared.catalog.initial[&sku];
            let added = adjustments.get(&sku).copied().unwrap_or(0);
            let committed = sold.get(sku.as_str()).copied().unwrap_or(0);
            let expected = initial + added - committed;
            let (on_hand, reserved) = (level["on_hand"].as_i64(), level["reserved"].as_i64());
            let mut wrong = Vec::new();
            if on_hand != Some(expected) {
                wrong.push(format!(
                    "on hand {on_hand:?}, expected {expected} (started {initial}, restocked {added}, sold {committed})"
                ));
            }
            if reserved != Some(0) {
                wrong.push(format!("{reserved:?} unit(s) still reserved after every order settled"));
            }
            if wrong.is_empty() {
                findings.skus_balanced += 1;
            } else {
                last.insert(sku.clone(), wrong.join("; "));
                unbalanced.push(sku);
            }
        }
        if unbalanced.is_empty() || Instant::now() >= stock_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for sku in unbalanced {
        findings.problems.push(format!("{sku}: {}", last.remove(&sku).unwrap_or_default()));
    }

    // 4. No negative stock anywhere.
    let mut cursor: Option<String> = None;
    loop {
        let path = format!(
            "/admin/v1/inventory?limit=100{}",
            cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default()
        );
        let page = match shared.admin.get(&path).await {
            Ok(page) => page,
            Err(e) => {
                findings.problems.push(format!("the stock list cannot be read: {e:#}"));
                break;
            }
        };
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for item in &items {
            let negative: Vec<&str> = ["on_hand", "reserved", "available"]
                .into_iter()
                .filter(|field| item[*field].as_i64().is_some_and(|v| v < 0))
                .collect();
            if !negative.is_empty() {
                findings.problems.push(format!("{}: negative {negative:?}: {item}", item["sku"]));
            }
        }
        findings.skus_scanned += items.len();
        match page["next_cursor"].as_str() {
            Some(next) if !items.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    findings
}
