//! The one rule for changing a payment, whatever store keeps it: what a move (authorize, capture,
//! void, fail, or a note that keeps the status), a refund or a refund's settlement does to the
//! payment, what the transaction log records, whether the change's events go out with it, and
//! when it is refused. A store applies it in its transaction to the payment it read there (under
//! its lock) and writes what [`apply`] answers.

use chrono::{DateTime, Utc};

use super::payment::{Payment, PaymentStatus, Refund, RefundStatus, Transition, stamp};

/// What the provider answered about a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Made: the provider's refund id.
    Succeeded(String),
    /// Accepted, not settled yet: the provider's refund id.
    Pending(String),
    /// Refused, with why.
    Failed(String),
}

/// A change asked of a payment.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// `transition`, when the payment's status is one of `from`.
    Move {
        /// The statuses the move applies to.
        from: &'a [PaymentStatus],
        /// What it changes and how the log calls it.
        transition: &'a Transition,
    },
    /// `refund` recorded, its amount counted as refunded: pending (the provider is asked next), or
    /// settled at once when its status is `succeeded` (made at the provider already). With
    /// `refunded_before`, only while the payment's refunded amount is still that.
    Refund {
        /// The refund.
        refund: &'a Refund,
        /// The refunded amount the refund was computed from.
        refunded_before: Option<i64>,
    },
    /// The pending `refund` settled with the provider's `outcome`; a refund settled before is left
    /// as it is.
    Settle {
        /// The refund, as stored.
        refund: &'a Refund,
        /// The provider's answer.
        outcome: &'a RefundOutcome,
    },
}

/// An entry for the transaction log; it records the payment's status, provider reference and
/// time after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// What happened (`authorized`, `refund_requested`…).
    pub kind: String,
    /// The amount it was about (minor units).
    pub amount: i64,
    /// More (a refund id, a webhook event id, a decline code).
    pub detail: String,
}

impl LogLine {
    fn new(kind: impl Into<String>, amount: i64, detail: impl Into<String>) -> Self {
        Self { kind: kind.into(), amount, detail: detail.into() }
    }
}

/// What a store writes, in one transaction, for a change [`apply`] allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The payment after the change: what the store answers.
    pub payment: Payment,
    /// Whether the payment's row changes (settling a refund as made, or as still pending at the
    /// provider, changes only the refund's).
    pub payment_changed: bool,
    /// The refund after the change: the one to insert for [`Change::Refund`], the one to update
    /// for [`Change::Settle`]; `None` for a move, and when a settlement changes nothing.
    pub refund: Option<Refund>,
    /// The log entries, in order.
    pub log: Vec<LogLine>,
    /// Whether the change's events are written to the outbox with it.
    pub publish: bool,
}

impl Applied {
    /// Nothing to write: the store answers `payment`.
    fn nothing(payment: Payment) -> Self {
        Self { payment, payment_changed: false, refund: None, log: Vec::new(), publish: false }
    }
}

/// Why a change does not apply (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The payment's status is not one the move is from (it moved on).
    #[error("the payment is {} now", .0.as_str())]
    Moved(PaymentStatus),
    /// The refunded amount is not the one the refund was computed from (a refund was recorded
    /// meanwhile).
    #[error("the payment's refunded amount is {refunded} now")]
    RefundedMoved {
        /// Minor units refunded now.
        refunded: i64,
    },
    /// Not a positive amount within what may still be refunded (none, for a payment not charged).
    #[error("at most {refundable} may still be refunded")]
    NotRefundable {
        /// Minor units that may still be refunded.
        refundable: i64,
    },
}

/// The log entry of a payment just made: `created` (pending), or `voided_before_authorization` for
/// one made voided by a void that came before its authorize.
pub fn opened(payment: &Payment) -> LogLine {
    let kind = if payment.status == PaymentStatus::Voided { "voided_before_authorization" } else { "created" };
    LogLine::new(kind, payment.amount.amount, "")
}

/// The status of a charged payment with `refunded` of its `captured` units refunded.
pub fn refunded_status(captured: i64, refunded: i64) -> PaymentStatus {
    match refunded {
        0 => PaymentStatus::Captured,
        r if r >= captured => PaymentStatus::Refunded,
        _ => PaymentStatus::PartiallyRefunded,
    }
}

/// `change` applied to `payment` (as stored) at `now`: what to write, or why it is refused.
pub fn apply(mut payment: Payment, change: Change<'_>, now: DateTime<Utc>) -> Result<Applied, Refused> {
    let now = stamp(now);
    match change {
        Change::Move { from, transition: t } => {
            if !from.contains(&payment.status) {
                return Err(Refused::Moved(payment.status));
            }
            payment.status = t.to;
            payment.provider_ref = t.provider_ref.clone().or(payment.provider_ref);
            payment.captured += t.captured;
            payment.refunded += t.refunded;
            if t.failure.is_some() {
                payment.failure = t.failure.clone();
            }
            payment.updated_at = now;
            let log = vec![LogLine::new(t.kind.as_str(), t.amount, t.detail.as_str())];
            Ok(Applied { payment, payment_changed: true, refund: None, log, publish: true })
        }
        Change::Refund { refund, refunded_before } => {
            if refunded_before.is_some_and(|before| before != payment.refunded) {
                return Err(Refused::RefundedMoved { refunded: payment.refunded });
            }
            let (amount, refundable) = (refund.amount.amount, payment.refundable());
            if amount <= 0 || amount > refundable {
                return Err(Refused::NotRefundable { refundable });
            }
            payment.refunded += amount;
            payment.status = refunded_status(payment.captured, payment.refunded);
            payment.updated_at = now;
            let settled = refund.status == RefundStatus::Succeeded;
            let mut log = vec![LogLine::new("refund_requested", amount, refund.id.as_str())];
            if settled {
                log.push(LogLine::new("refunded", amount, refund.id.as_str()));
            }
            let status = if settled { RefundStatus::Succeeded } else { RefundStatus::Pending };
            let recorded = Refund { status, ..refund.clone() };
            Ok(Applied { payment, payment_changed: true, refund: Some(recorded), log, publish: settled })
        }
        Change::Settle { refund, outcome } => {
            if refund.status != RefundStatus::Pending {
                return Ok(Applied::nothing(payment));
            }
            payment.updated_at = now;
            let amount = refund.amount.amount;
            Ok(match outcome {
                RefundOutcome::Succeeded(provider_ref) => {
                    let settled = Refund {
                        status: RefundStatus::Succeeded,
                        provider_ref: Some(provider_ref.clone()),
                        ..refund.clone()
                    };
                    let log = vec![LogLine::new("refunded", amount, refund.id.as_str())];
                    Applied { payment, payment_changed: false, refund: Some(settled), log, publish: true }
                }
                RefundOutcome::Pending(provider_ref) if refund.provider_ref.as_ref() == Some(provider_ref) => {
                    Applied::nothing(payment)
                }
                RefundOutcome::Pending(provider_ref) => {
                    let held = Refund { provider_ref: Some(provider_ref.clone()), ..refund.clone() };
                    let detail = format!("{} ({provider_ref} pending at the provider)", refund.id);
                    let log = vec![LogLine::new("refund_pending", amount, detail)];
                    Applied { payment, payment_changed: false, refund: Some(held), log, publish: false }
                }
                RefundOutcome::Failed(reason) => {
                    payment.refunded -= amount;
                    payment.status = refunded_status(payment.captured, payment.refunded);
                    let failed = Refund { status: RefundStatus::Failed, ..refund.clone() };
                    let log = vec![LogLine::new("refund_failed", amount, format!("{}: {reason}", refund.id))];
                    Applied { payment, payment_changed: true, refund: Some(failed), log, publish: false }
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use platform::money::Money;

    use super::*;
    use crate::domain::payment::Failure;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    /// A payment of 10.00 in `status`, with `captured` and `refunded` minor units.
    fn payment(status: PaymentStatus, captured: i64, refunded: i64) -> Payment {
        Payment {
            id: "pay_1".into(),
            order_id: "ord_1".into(),
            customer_id: "cus_1".into(),
            amount: Money { amount: 1000, currency: "USD".into() },
            status,
            payment_method: "pm_card_visa".into(),
            provider: "simulated".into(),
            provider_ref: (status != PaymentStatus::Pending).then(|| "pi_1".into()),
            captured,
            refunded,
            failure: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn refund(amount: i64, status: RefundStatus, provider_ref: Option<&str>) -> Refund {
        Refund {
            id: "re_1".into(),
            payment_id: "pay_1".into(),
            amount: Money { amount, currency: "USD".into() },
            status,
            provider_ref: provider_ref.map(Into::into),
            reason: "returned".into(),
            created_at: at(5),
        }
    }

    fn moved(payment: Payment, from: &[PaymentStatus], transition: &Transition) -> Result<Applied, Refused> {
        apply(payment, Change::Move { from, transition }, at(10))
    }

    fn refunding(payment: Payment, refund: &Refund, refunded_before: Option<i64>) -> Result<Applied, Refused> {
        apply(payment, Change::Refund { refund, refunded_before }, at(10))
    }

    /// `refund` of a payment of 10.00 with 4.00 refunded, settled with `outcome`.
    fn settling(refund: &Refund, outcome: &RefundOutcome) -> Applied {
        let stored = payment(PaymentStatus::PartiallyRefunded, 1000, 400);
        apply(stored, Change::Settle { refund, outcome }, at(10)).unwrap()
    }

    fn kinds(applied: &Applied) -> Vec<&str> {
        applied.log.iter().map(|l| l.kind.as_str()).collect()
    }

    #[test]
    fn an_authorization_moves_a_pending_payment_and_records_the_providers_reference() {
        let mut t = Transition::new(PaymentStatus::Authorized, "authorized", 1000);
        t.provider_ref = Some("pi_9".into());
        let applied = moved(payment(PaymentStatus::Pending, 0, 0), &[PaymentStatus::Pending], &t).unwrap();
        let p = &applied.payment;
        assert_eq!(
            (p.status, p.provider_ref.as_deref(), p.updated_at),
            (PaymentStatus::Authorized, Some("pi_9"), at(10))
        );
        assert_eq!(applied.log, [LogLine::new("authorized", 1000, "")]);
        assert!(applied.payment_changed && applied.publish && applied.refund.is_none());
    }

    #[test]
    fn a_capture_adds_what_it_charged_and_keeps_the_reference() {
        let mut t = Transition::new(PaymentStatus::Captured, "captured", 1000);
        t.captured = 1000;
        let applied = moved(payment(PaymentStatus::Authorized, 0, 0), &[PaymentStatus::Authorized], &t).unwrap();
        let p = &applied.payment;
        assert_eq!((p.status, p.captured, p.provider_ref.as_deref()), (PaymentStatus::Captured, 1000, Some("pi_1")));
        assert_eq!(kinds(&applied), ["captured"]);
    }

    #[test]
    fn a_void_moves_a_pending_or_authorized_payment() {
        let t = Transition::new(PaymentStatus::Voided, "voided", 1000);
        for status in [PaymentStatus::Pending, PaymentStatus::Authorized] {
            let from = [PaymentStatus::Pending, PaymentStatus::Authorized];
            let applied = moved(payment(status, 0, 0), &from, &t).unwrap();
            assert_eq!(applied.payment.status, PaymentStatus::Voided, "from {status:?}");
        }
    }

    #[test]
    fn a_failure_is_kept_with_its_reason_and_a_later_move_without_one_keeps_it() {
        let failure = Failure {
            code: "card_declined".into(),
            decline_code: Some("insufficient_funds".into()),
            message: "No.".into(),
        };
        let mut t = Transition::new(PaymentStatus::Failed, "failed", 1000);
        t.failure = Some(failure.clone());
        t.detail = "insufficient_funds".into();
        let failed = moved(payment(PaymentStatus::Pending, 0, 0), &[PaymentStatus::Pending], &t).unwrap();
        assert_eq!((failed.payment.status, failed.payment.failure.as_ref()), (PaymentStatus::Failed, Some(&failure)));
        assert_eq!(failed.log, [LogLine::new("failed", 1000, "insufficient_funds")]);

        let note = Transition::new(PaymentStatus::Failed, "webhook:payment_intent.payment_failed", 1000);
        let noted = moved(failed.payment, &[PaymentStatus::Failed], &note).unwrap();
        assert_eq!((noted.payment.status, noted.payment.failure), (PaymentStatus::Failed, Some(failure)));
    }

    #[test]
    fn a_move_from_a_status_it_does_not_name_is_refused() {
        let t = Transition::new(PaymentStatus::Captured, "captured", 1000);
        for status in PaymentStatus::ALL.into_iter().filter(|s| *s != PaymentStatus::Authorized) {
            let refused = moved(payment(status, 0, 0), &[PaymentStatus::Authorized], &t);
            assert_eq!(refused, Err(Refused::Moved(status)));
        }
        assert_eq!(moved(payment(PaymentStatus::Pending, 0, 0), &[], &t), Err(Refused::Moved(PaymentStatus::Pending)));
    }

    #[test]
    fn a_pending_refund_counts_its_amount_as_refunded_and_publishes_nothing_yet() {
        let pending = refund(400, RefundStatus::Pending, None);
        let applied = refunding(payment(PaymentStatus::Captured, 1000, 0), &pending, None).unwrap();
        assert_eq!((applied.payment.status, applied.payment.refunded), (PaymentStatus::PartiallyRefunded, 400));
        assert_eq!(applied.log, [LogLine::new("refund_requested", 400, "re_1")]);
        assert_eq!(applied.refund, Some(pending));
        assert!(applied.payment_changed && !applied.publish);
    }

    #[test]
    fn a_refund_made_at_the_provider_is_settled_at_once_and_published() {
        let made = refund(600, RefundStatus::Succeeded, Some("ch_1"));
        let applied = refunding(payment(PaymentStatus::PartiallyRefunded, 1000, 400), &made, Some(400)).unwrap();
        assert_eq!((applied.payment.status, applied.payment.refunded), (PaymentStatus::Refunded, 1000));
        assert_eq!(kinds(&applied), ["refund_requested", "refunded"]);
        assert_eq!(applied.refund, Some(made));
        assert!(applied.publish);
    }

    #[test]
    fn a_refund_is_recorded_pending_unless_it_was_made() {
        let failed = refund(100, RefundStatus::Failed, None);
        let applied = refunding(payment(PaymentStatus::Captured, 1000, 0), &failed, None).unwrap();
        assert_eq!(applied.refund.map(|r| r.status), Some(RefundStatus::Pending));
    }

    #[test]
    fn a_refund_beyond_what_is_left_or_of_money_not_charged_is_refused() {
        let charged = |refunded| payment(PaymentStatus::PartiallyRefunded, 1000, refunded);
        for amount in [0, -5, 701] {
            let r = refund(amount, RefundStatus::Pending, None);
            let refused = refunding(charged(300), &r, None);
            assert_eq!(refused, Err(Refused::NotRefundable { refundable: 700 }), "{amount}");
        }
        let r = refund(100, RefundStatus::Pending, None);
        for status in PaymentStatus::ALL.into_iter().filter(|s| !s.is_charged()) {
            let refused = refunding(payment(status, 1000, 0), &r, None);
            assert_eq!(refused, Err(Refused::NotRefundable { refundable: 0 }), "{status:?}");
        }
    }

    #[test]
    fn a_refund_computed_from_another_refunded_amount_is_refused() {
        let r = refund(100, RefundStatus::Succeeded, Some("ch_1"));
        let refused = refunding(payment(PaymentStatus::PartiallyRefunded, 1000, 300), &r, Some(200));
        assert_eq!(refused, Err(Refused::RefundedMoved { refunded: 300 }));
    }

    #[test]
    fn a_refund_the_provider_made_is_settled_and_published_without_touching_the_payment_row() {
        let pending = refund(400, RefundStatus::Pending, None);
        let applied = settling(&pending, &RefundOutcome::Succeeded("re_stripe".into()));
        let settled = applied.refund.as_ref().unwrap();
        assert_eq!((settled.status, settled.provider_ref.as_deref()), (RefundStatus::Succeeded, Some("re_stripe")));
        assert_eq!(applied.log, [LogLine::new("refunded", 400, "re_1")]);
        assert_eq!((applied.payment.refunded, applied.payment.updated_at), (400, at(10)));
        assert!(applied.publish && !applied.payment_changed);
    }

    #[test]
    fn a_refund_pending_at_the_provider_keeps_its_reference_once() {
        let pending = refund(400, RefundStatus::Pending, None);
        let outcome = RefundOutcome::Pending("re_stripe".into());
        let applied = settling(&pending, &outcome);
        let held = applied.refund.clone().unwrap();
        assert_eq!((held.status, held.provider_ref.as_deref()), (RefundStatus::Pending, Some("re_stripe")));
        assert_eq!(applied.log, [LogLine::new("refund_pending", 400, "re_1 (re_stripe pending at the provider)")]);
        assert!(!applied.publish && !applied.payment_changed);

        let unchanged = settling(&held, &outcome);
        assert!(unchanged.log.is_empty() && unchanged.refund.is_none() && !unchanged.payment_changed);
    }

    #[test]
    fn a_refund_the_provider_refused_makes_its_amount_refundable_again() {
        let pending = refund(400, RefundStatus::Pending, None);
        let applied = settling(&pending, &RefundOutcome::Failed("disputed".into()));
        assert_eq!((applied.payment.status, applied.payment.refunded), (PaymentStatus::Captured, 0));
        assert_eq!(applied.refund.map(|r| r.status), Some(RefundStatus::Failed));
        assert_eq!(applied.log, [LogLine::new("refund_failed", 400, "re_1: disputed")]);
        assert!(applied.payment_changed && !applied.publish);
    }

    #[test]
    fn a_refund_settled_before_is_left_as_it_is() {
        for status in [RefundStatus::Succeeded, RefundStatus::Failed] {
            let settled = refund(400, status, Some("re_stripe"));
            let applied = settling(&settled, &RefundOutcome::Failed("late".into()));
            assert_eq!(applied, Applied::nothing(payment(PaymentStatus::PartiallyRefunded, 1000, 400)), "{status:?}");
        }
    }

    #[test]
    fn a_new_payment_is_logged_created_or_voided_before_its_authorization() {
        assert_eq!(opened(&payment(PaymentStatus::Pending, 0, 0)), LogLine::new("created", 1000, ""));
        assert_eq!(opened(&payment(PaymentStatus::Voided, 0, 0)).kind, "voided_before_authorization");
    }

    #[test]
    fn the_refunded_amount_names_the_status_of_a_charged_payment() {
        assert_eq!(refunded_status(1000, 0), PaymentStatus::Captured);
        assert_eq!(refunded_status(1000, 1), PaymentStatus::PartiallyRefunded);
        assert_eq!(refunded_status(1000, 1000), PaymentStatus::Refunded);
    }
}
