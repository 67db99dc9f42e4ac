//! The order service's part of reconciling what the world did with what the saga recorded
//! ([`platform::contracts::reconcile`] has the rules).
//!
//! - **The audit.** Every order that settles (shipped, rejected, or cancelled or failed with its
//!   compensations answered) keeps one more deadline, [`AUDIT_STEPS`] step timeouts on. When it
//!   passes, the sweeper sends the commands that the rules say set the order right: an order kept
//!   has its capture and its commit asked for again, one that will not ship its void and its
//!   release. Each service answers from its own records (a repeated command is answered again), so
//!   the answers are the check, and the commands are the repairs: a capture taken late, a payment
//!   refunded, a hold released. What the commands cannot set right (a shipped order whose payment
//!   was voided, whose stock went back) is marked on the order (`audit:<rule>`), logged and
//!   counted (`reconcile_unrepaired_total`, and the `ReconcileUnrepaired` business metric the
//!   alarm watches).
//! - **Dead ends.** [`run`] looks, every interval, for an order the saga is working on that has no
//!   deadline (which nothing should leave), and gives it one, so the sweeper moves it.
//!
//! No service reads another's tables: the audit asks through the saga's own commands.
//! `shop reconcile` reads every store at once with the same rules.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use platform::contracts::reconcile::{Expectation, Finding, Repair, judge_payments, judge_reservation};
use platform::events::Event;
use tokio_util::sync::CancellationToken;

use crate::app::saga;
use crate::domain::order::{Order, OrderStatus};
use crate::store::{Advance, OrderStore, StoreError};

/// Step timeouts after an order settles before it is audited.
pub const AUDIT_STEPS: i32 = 4;

/// How often [`run`] looks for orders without a deadline.
pub const DEAD_END_INTERVAL: Duration = Duration::from_secs(300);

/// Orders of each waiting status read per round of [`dead_ends_once`].
const PAGE: usize = 100;

/// Pages of each waiting status read per round.
const PAGES: usize = 10;

/// The mark of a finding on an order's history.
pub fn audit_mark(rule: &str) -> String {
    format!("audit:{rule}")
}

/// When an order settling now is audited.
pub fn audit_deadline(step: chrono::Duration) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + step * AUDIT_STEPS)
}

/// What an order's settled status must have.
pub fn expectation(order: &Order) -> Option<Expectation> {
    Expectation::of(order.status.as_str())
}

/// The commands the audit of a settled order sends: those that set it right if the world
/// disagrees, each answered from the receiving service's records.
pub fn audit(order: &Order) -> Vec<Event> {
    let repairs: &[Repair] = match expectation(order) {
        Some(Expectation::Kept) if order.needs_payment() => &[Repair::Commit, Repair::Capture],
        Some(Expectation::Kept | Expectation::RefundedAfterDelivery) => &[Repair::Commit],
        // A rejected order was never sent to the payment: only its stock is asked about.
        Some(Expectation::Nothing) if order.status == OrderStatus::Rejected => &[Repair::Release],
        Some(Expectation::Nothing) => &[Repair::Release, Repair::Void],
        None => &[],
    };
    repairs.iter().map(|repair| command(order, *repair)).collect()
}

/// The saga command that makes `repair` for `order` (a release or void carries the reason the
/// order reached its status).
pub fn command(order: &Order, repair: Repair) -> Event {
    let reason = order.status_reason().unwrap_or(order.status.as_str());
    match repair {
        Repair::Capture => saga::capture(order, None),
        Repair::Commit => saga::commit(order, None),
        Repair::Void => saga::void(order, reason, None),
        Repair::Release => saga::release(order, reason, None),
    }
}

/// The payment status a refused capture (`payment.capture_failed.v1`'s reason) stands for; `None`
/// when the order has no payment.
pub fn payment_behind_refusal(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "no_payment" => return None,
        "refunded" => "refunded",
        "voided" | "authorization_cancelled" => "voided",
        "authorization_failed" => "failed",
        "not_authorized" => "pending",
        // The provider refused, and the hold stands.
        _ => "authorized",
    })
}

/// The reservation status a failed commit (`inventory.commit_failed.v1`'s reason) stands for;
/// `None` when the inventory has none.
pub fn reservation_behind_refusal(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "unknown" => return None,
        "rejected" => "rejected",
        _ => "released",
    })
}

/// What a refused capture of a settled order says against the rules.
pub fn capture_refused(order: &Order, reason: &str) -> Option<Finding> {
    let expect = expectation(order)?;
    let payments: Vec<&str> = payment_behind_refusal(reason).into_iter().collect();
    judge_payments(expect, order.total.amount, &payments).map(unrepairable)
}

/// What a failed commit of a settled order says against the rules.
pub fn commit_refused(order: &Order, reason: &str) -> Option<Finding> {
    let expect = expectation(order)?;
    judge_reservation(expect, reservation_behind_refusal(reason)).map(unrepairable)
}

/// A finding the audit's own command already tried to set right.
fn unrepairable(mut finding: Finding) -> Finding {
    finding.repair = None;
    finding
}

/// Counts and logs a finding the audit of `order` could not set right.
pub fn report(order: &Order, finding: &Finding) {
    tracing::error!(
        order_id = %order.id,
        status = order.status.as_str(),
        rule = finding.rule,
        detail = %finding.detail,
        "reconcile: an order disagrees with its payment or stock and no command can set it right"
    );
    count(finding.rule, false);
}

/// Counts a finding of the order service's reconciler.
pub fn count(rule: &'static str, repaired: bool) {
    platform::contracts::reconcile::count(crate::NAME, rule, repaired);
}

/// Statuses in which the saga works on an order, each of which has a deadline.
pub const WAITING: [OrderStatus; 4] =
    [OrderStatus::Pending, OrderStatus::Reserved, OrderStatus::Paid, OrderStatus::Confirmed];

/// One round of the dead-end search: every order the saga is working on that has no deadline is
/// given one now (the sweeper then asks again or compensates); how many were.
pub async fn dead_ends_once(orders: &dyn OrderStore) -> Result<usize, StoreError> {
    let mut repaired = 0;
    for status in WAITING {
        let mut after: Option<String> = None;
        for _ in 0..PAGES {
            let page = orders.by_status(status, after.as_deref(), PAGE).await?;
            for order in page.iter().filter(|o| o.deadline.is_none()) {
                let advance = Advance { deadline: Some(Utc::now()), ..Advance::default() };
                if orders.advance(&order.id, &[status], &advance, &[]).await?.is_some() {
                    tracing::warn!(order_id = %order.id, status = status.as_str(),
                        "reconcile: an order the saga works on had no deadline; it has one now");
                    count("no_deadline", true);
                    repaired += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
    }
    Ok(repaired)
}

/// Runs [`dead_ends_once`] every `every` until `shutdown` (the audit runs with the sweeper).
pub async fn run(orders: Arc<dyn OrderStore>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match dead_ends_once(orders.as_ref()).await {
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %platform::error::cause_chain(&error), "could not look for orders without a deadline")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_stand_for_the_state_they_found() {
        assert_eq!(payment_behind_refusal("refunded"), Some("refunded"));
        assert_eq!(payment_behind_refusal("authorization_cancelled"), Some("voided"));
        assert_eq!(payment_behind_refusal("no_payment"), None);
        assert_eq!(payment_behind_refusal("Your card's authorization expired."), Some("authorized"));
        assert_eq!(reservation_behind_refusal("expired"), Some("released"));
        assert_eq!(reservation_behind_refusal("unknown"), None);
    }
}
