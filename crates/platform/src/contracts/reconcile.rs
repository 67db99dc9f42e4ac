//! What must hold between an order, its payment and its stock reservation once the saga is done
//! with the order. One set of rules for everything that checks it: the order service's audit of
//! each settled order, `shop reconcile`, and the load test's consistency check.
//!
//! - An order kept (shipped, delivered) has exactly one charged payment (captured, or refunded
//!   since, in part or in full: refunds are their own process) and its reservation committed.
//! - An order refunded after delivery keeps its stock sold and no money: its payment is refunded.
//! - An order that will not ship (cancelled, rejected, payment failed) keeps nothing: every
//!   payment of it failed, was voided or was refunded, and its reservation, if any, was released,
//!   returned or rejected.
//!
//! Each finding names the rule broken and, where a saga command can set it right, that command:
//! a capture or a commit for an order kept, a void (which refunds a capture) or a release (which
//! returns committed units) for one that will not ship. What no command can set right (an order
//! shipped whose payment was voided, a shipped order whose stock went back, two charges) is for
//! people to look at.

/// What a settled order must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// Shipped or delivered: its money taken, its stock sold.
    Kept,
    /// Refunded after delivery: its stock sold, its money given back.
    RefundedAfterDelivery,
    /// Cancelled, rejected or payment failed: no money, no stock.
    Nothing,
}

impl Expectation {
    /// What an order in `status` must have; `None` while the saga is still working on it
    /// (pending, reserved, paid, confirmed): its deadline, not these rules, moves it.
    pub fn of(status: &str) -> Option<Self> {
        Some(match status {
            "shipped" | "delivered" => Self::Kept,
            "refunded" => Self::RefundedAfterDelivery,
            "cancelled" | "rejected" | "payment_failed" => Self::Nothing,
            _ => return None,
        })
    }
}

/// A saga command that sets a finding right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Repair {
    /// `payment.capture.v1`: take the authorized money of an order kept.
    Capture,
    /// `inventory.commit.v1`: take the held stock of an order kept.
    Commit,
    /// `payment.void.v1`: release the hold (or refund the capture) of an order that will not ship.
    Void,
    /// `inventory.release.v1`: give back the held (or committed) stock of an order that will not
    /// ship.
    Release,
}

impl Repair {
    /// The command's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Commit => "commit",
            Self::Void => "void",
            Self::Release => "release",
        }
    }
}

/// A rule an order breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule, as a stable name (`money_kept`, `no_stock`…): the metrics and reports use it.
    pub rule: &'static str,
    /// The command that sets it right, if one can.
    pub repair: Option<Repair>,
    /// What was found, for people.
    pub detail: String,
}

impl Finding {
    fn new(rule: &'static str, repair: Option<Repair>, detail: String) -> Self {
        Self { rule, repair, detail }
    }
}

/// Payment statuses in which the money was taken (a refund since is the refunds' business).
pub const CHARGED: [&str; 3] = ["captured", "partially_refunded", "refunded"];

/// Payment statuses that keep nothing of the shopper's.
pub const SETTLED_WITHOUT_MONEY: [&str; 3] = ["failed", "voided", "refunded"];

/// Reservation statuses that hold no stock.
pub const HOLDING_NO_STOCK: [&str; 3] = ["released", "returned", "rejected"];

/// The money of an order in `expect` whose total is `total` minor units, against the statuses of
/// its payments (the platform makes one per order; more is itself a finding).
pub fn judge_payments(expect: Expectation, total: i64, payments: &[&str]) -> Option<Finding> {
    let charged = payments.iter().filter(|p| CHARGED.contains(p)).count();
    match expect {
        Expectation::Kept if charged > 1 => {
            Some(Finding::new("charged_twice", None, format!("{charged} charged payments: {payments:?}")))
        }
        Expectation::Kept if charged == 1 => None,
        Expectation::Kept if payments.contains(&"authorized") => {
            Some(Finding::new("not_captured", Some(Repair::Capture), "its payment is still only authorized".into()))
        }
        // An order with nothing to pay has no payment.
        Expectation::Kept if total == 0 && payments.iter().all(|p| *p == "voided") => None,
        Expectation::Kept => Some(Finding::new("no_payment", None, format!("shipped without money: {payments:?}"))),
        Expectation::RefundedAfterDelivery => {
            let kept: Vec<&&str> = payments.iter().filter(|p| !SETTLED_WITHOUT_MONEY.contains(p)).collect();
            (!kept.is_empty()).then(|| Finding::new("money_kept", None, format!("refunded, yet payments {kept:?}")))
        }
        Expectation::Nothing => {
            let kept: Vec<&&str> = payments.iter().filter(|p| !SETTLED_WITHOUT_MONEY.contains(p)).collect();
            (!kept.is_empty()).then(|| {
                Finding::new("money_kept", Some(Repair::Void), format!("will not ship, yet payments {kept:?}"))
            })
        }
    }
}

/// The stock of an order in `expect` against the status of its reservation (`None`: the
/// inventory has none).
pub fn judge_reservation(expect: Expectation, reservation: Option<&str>) -> Option<Finding> {
    match (expect, reservation) {
        (Expectation::Kept | Expectation::RefundedAfterDelivery, Some("committed")) => None,
        (Expectation::Kept | Expectation::RefundedAfterDelivery, Some("held")) => {
            Some(Finding::new("not_committed", Some(Repair::Commit), "its stock is still only held".into()))
        }
        (Expectation::Kept | Expectation::RefundedAfterDelivery, other) => Some(Finding::new(
            "no_stock",
            None,
            format!("shipped without its stock: reservation {}", other.unwrap_or("missing")),
        )),
        (Expectation::Nothing, Some(status @ ("held" | "committed"))) => {
            Some(Finding::new("stock_kept", Some(Repair::Release), format!("will not ship, yet its stock is {status}")))
        }
        (Expectation::Nothing, _) => None,
    }
}

/// Every rule an order in `status` breaks, given its payments and reservation; empty when it
/// agrees, or while the saga is still working on it.
pub fn judge(status: &str, total: i64, payments: &[&str], reservation: Option<&str>) -> Vec<Finding> {
    let Some(expect) = Expectation::of(status) else { return Vec::new() };
    judge_payments(expect, total, payments).into_iter().chain(judge_reservation(expect, reservation)).collect()
}

/// Counts a finding of `service`'s reconciler: `reconcile_findings_total{service, rule,
/// repaired}`, and the business metric (`ReconcileRepaired`, `ReconcileUnrepaired`) the CDK app's
/// alarm watches.
pub fn count(service: &'static str, rule: &'static str, repaired: bool) {
    metrics::counter!("reconcile_findings_total", "service" => service, "rule" => rule,
        "repaired" => if repaired { "true" } else { "false" })
    .increment(1);
    if crate::telemetry::emf::enabled() {
        let metric = if repaired { "ReconcileRepaired" } else { "ReconcileUnrepaired" };
        crate::telemetry::emf::business(service, metric, 1.0, crate::telemetry::emf::Unit::Count)
            .property("Rule", rule)
            .emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(
        status: &str,
        total: i64,
        payments: &[&str],
        reservation: Option<&str>,
    ) -> Vec<(&'static str, Option<Repair>)> {
        judge(status, total, payments, reservation).into_iter().map(|f| (f.rule, f.repair)).collect()
    }

    #[test]
    fn an_order_kept_has_one_charge_and_its_stock_committed() {
        for charged in CHARGED {
            assert_eq!(rules("shipped", 100, &[charged], Some("committed")), []);
        }
        assert_eq!(rules("delivered", 100, &["captured"], Some("committed")), []);
        assert_eq!(
            rules("shipped", 100, &["authorized"], Some("held")),
            [("not_captured", Some(Repair::Capture)), ("not_committed", Some(Repair::Commit))]
        );
        assert_eq!(rules("shipped", 100, &["voided"], Some("committed")), [("no_payment", None)]);
        assert_eq!(rules("shipped", 100, &[], Some("committed")), [("no_payment", None)]);
        assert_eq!(rules("shipped", 100, &["captured", "captured"], Some("committed")), [("charged_twice", None)]);
        for gone in [None, Some("released"), Some("returned"), Some("rejected")] {
            assert_eq!(rules("shipped", 100, &["captured"], gone), [("no_stock", None)]);
        }
    }

    #[test]
    fn an_order_with_nothing_to_pay_needs_no_payment() {
        assert_eq!(rules("shipped", 0, &[], Some("committed")), []);
        assert_eq!(rules("shipped", 0, &["voided"], Some("committed")), []);
        assert_eq!(rules("shipped", 100, &["voided"], Some("committed")), [("no_payment", None)]);
    }

    #[test]
    fn an_order_that_will_not_ship_keeps_nothing() {
        for status in ["cancelled", "rejected", "payment_failed"] {
            for settled in SETTLED_WITHOUT_MONEY {
                for stock in [None, Some("released"), Some("returned"), Some("rejected")] {
                    assert_eq!(rules(status, 100, &[settled], stock), [], "{status} {settled} {stock:?}");
                }
            }
            assert_eq!(rules(status, 100, &[], None), []);
            for kept in ["pending", "authorized", "captured", "partially_refunded"] {
                assert_eq!(rules(status, 100, &[kept], None), [("money_kept", Some(Repair::Void))]);
            }
            for held in ["held", "committed"] {
                assert_eq!(rules(status, 100, &["voided"], Some(held)), [("stock_kept", Some(Repair::Release))]);
            }
        }
    }

    #[test]
    fn an_order_refunded_after_delivery_keeps_its_stock_sold_and_no_money() {
        assert_eq!(rules("refunded", 100, &["refunded"], Some("committed")), []);
        assert_eq!(rules("refunded", 100, &["captured"], Some("committed")), [("money_kept", None)]);
        assert_eq!(rules("refunded", 100, &["refunded"], Some("returned")), [("no_stock", None)]);
    }

    #[test]
    fn the_saga_judges_its_own_orders() {
        for status in ["pending", "reserved", "paid", "confirmed"] {
            assert_eq!(rules(status, 100, &["captured", "captured"], None), []);
        }
    }
}
