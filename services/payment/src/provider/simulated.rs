//! The simulated provider: the embedded mode's default and the test workhorse. It honours Stripe's
//! test payment methods (`pm_card_visa` and the other `pm_card_<brand>` succeed;
//! `pm_card_chargeDeclined…` decline with Stripe's codes), answers an idempotency key with the same
//! result every time (its references are derived from the key), keeps the state of the payments it
//! holds (so a cancel of a captured payment is refused as Stripe refuses it, and it can be asked
//! what it did), and can be slowed down or made to fail for fault tests: before a call takes
//! effect, after it took effect (the answer lost), or by refusing captures as an authorization that
//! lapsed.
//!
//! Its memory is the process's: after a restart a well-formed reference it no longer knows is taken
//! for an authorization made before, so orders placed before a restart still complete.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use platform::money::Money;
use sha2::{Digest, Sha256};

use super::{Authorization, Intent, IntentState, PaymentProvider, ProviderError, ProviderRefund, RefundState};
use crate::domain::payment::Failure;

/// Payments the simulated provider remembers; the oldest are forgotten past it.
const REMEMBERED: usize = 200_000;

/// Brands Stripe's `pm_card_<brand>` test methods name, all of which succeed.
const SUCCEEDING: &[&str] = &[
    "visa",
    "visa_debit",
    "mastercard",
    "mastercard_debit",
    "mastercard_prepaid",
    "amex",
    "discover",
    "diners",
    "jcb",
    "unionpay",
];

/// The declines of Stripe's test methods: method suffix → (code, decline code, message).
const DECLINES: &[(&str, &str, Option<&str>, &str)] = &[
    ("chargeDeclined", "card_declined", Some("generic_decline"), "Your card was declined."),
    (
        "chargeDeclinedInsufficientFunds",
        "card_declined",
        Some("insufficient_funds"),
        "Your card has insufficient funds.",
    ),
    ("chargeDeclinedLostCard", "card_declined", Some("lost_card"), "Your card was declined."),
    ("chargeDeclinedStolenCard", "card_declined", Some("stolen_card"), "Your card was declined."),
    ("chargeDeclinedFraudulent", "card_declined", Some("fraudulent"), "Your card was declined."),
    ("chargeDeclinedExpiredCard", "expired_card", None, "Your card has expired."),
    ("chargeDeclinedIncorrectCvc", "incorrect_cvc", None, "Your card's security code is incorrect."),
    ("chargeDeclinedProcessingError", "processing_error", None, "An error occurred while processing your card."),
];

/// The simulated provider.
#[derive(Debug, Default)]
pub struct SimulatedProvider {
    latency: Duration,
    /// Calls out of 1,000,000 that fail as if the provider were down.
    failure_ppm: u32,
    /// Calls still to fail before they take effect, whatever the rate (set by tests).
    fail_next: AtomicU32,
    /// Calls still to take effect and then fail as if the answer was lost (set by tests).
    lose_answers: AtomicU32,
    /// Whether captures are refused as for a lapsed authorization (set by tests).
    refuse_captures: AtomicBool,
    /// Whether refunds stay pending until told how they end (set by tests).
    pending_refunds: AtomicBool,
    /// Calls made, for tests.
    calls: AtomicU64,
    /// The payments it holds.
    intents: Mutex<Intents>,
}

/// The payments the simulated provider holds, by reference, and the reference of each order's.
#[derive(Debug, Default)]
struct Intents {
    states: HashMap<String, IntentState>,
    by_order: HashMap<String, String>,
    /// Refunds made pending, by id, and how they stand.
    refunds: HashMap<String, RefundState>,
    made: VecDeque<(String, String)>,
}

impl Intents {
    fn state(&self, provider_ref: &str) -> IntentState {
        // A reference it made but no longer knows (a restart): an authorization from before.
        self.states.get(provider_ref).cloned().unwrap_or(IntentState::Authorized)
    }

    fn insert(&mut self, provider_ref: &str, order_id: &str) {
        if self.states.contains_key(provider_ref) {
            return;
        }
        if self.made.len() >= REMEMBERED
            && let Some((old_ref, old_order)) = self.made.pop_front()
        {
            self.states.remove(&old_ref);
            if self.by_order.get(&old_order) == Some(&old_ref) {
                self.by_order.remove(&old_order);
            }
        }
        self.states.insert(provider_ref.to_owned(), IntentState::Authorized);
        self.by_order.insert(order_id.to_owned(), provider_ref.to_owned());
        self.made.push_back((provider_ref.to_owned(), order_id.to_owned()));
    }
}

impl SimulatedProvider {
    /// A provider answering after `latency`, failing `failure_rate` (0 to 1) of calls as
    /// unavailable.
    pub fn new(latency: Duration, failure_rate: f64) -> Self {
        Self { latency, failure_ppm: (failure_rate.clamp(0.0, 1.0) * 1e6) as u32, ..Self::default() }
    }

    /// Makes the next `calls` calls fail as if the provider were down, before they take effect.
    pub fn fail_next(&self, calls: u32) {
        self.fail_next.store(calls, Ordering::SeqCst);
    }

    /// Makes the next `calls` calls take effect and then fail as if their answer was lost (a
    /// timeout after the provider acted).
    pub fn lose_next_answers(&self, calls: u32) {
        self.lose_answers.store(calls, Ordering::SeqCst);
    }

    /// Refuses every capture from now on as a lapsed authorization (the provider cancels it), or
    /// stops refusing.
    pub fn refuse_captures(&self, refuse: bool) {
        self.refuse_captures.store(refuse, Ordering::SeqCst);
    }

    /// Makes refunds from now on stay pending until [`end_pending_refunds`](Self::end_pending_refunds)
    /// (as bank transfers do), or settle at once again.
    pub fn hold_refunds_pending(&self, pending: bool) {
        self.pending_refunds.store(pending, Ordering::SeqCst);
    }

    /// Ends every pending refund as `state` (succeeded or failed), for tests; the ids ended.
    pub fn end_pending_refunds(&self, state: RefundState) -> Vec<String> {
        let mut intents = self.intents();
        let pending: Vec<String> =
            intents.refunds.iter().filter(|(_, s)| **s == RefundState::Pending).map(|(id, _)| id.clone()).collect();
        for id in &pending {
            intents.refunds.insert(id.clone(), state.clone());
        }
        pending
    }

    /// Where the payment `provider_ref` stands, for tests.
    pub fn state_of(&self, provider_ref: &str) -> IntentState {
        self.intents().state(provider_ref)
    }

    /// Where the payment made for `order_id` stands, if one was made, for tests.
    pub fn state_for_order(&self, order_id: &str) -> Option<IntentState> {
        let intents = self.intents();
        intents.by_order.get(order_id).map(|provider_ref| intents.state(provider_ref))
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn intents(&self) -> std::sync::MutexGuard<'_, Intents> {
        self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn call(&self) -> Result<(), ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let forced = self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let random = self.failure_ppm > 0 && (rand::random::<u32>() % 1_000_000) < self.failure_ppm;
        if forced || random {
            return Err(ProviderError::Unavailable("the simulated provider is failing on purpose".into()));
        }
        Ok(())
    }

    /// `outcome` as the caller sees it: lost (after taking effect) when told to lose answers.
    fn answer<T>(&self, outcome: Result<T, ProviderError>) -> Result<T, ProviderError> {
        let lost = self.lose_answers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if lost {
            return Err(ProviderError::Unavailable("the simulated provider's answer was lost on purpose".into()));
        }
        outcome
    }
}

/// A reference derived from the idempotency key: the same key always gives the same reference.
fn reference(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{prefix}_sim_{}", &hex::encode(digest)[..24])
}

fn invalid_ref(provider_ref: &str) -> Result<(), ProviderError> {
    if provider_ref.starts_with("pi_sim_") {
        Ok(())
    } else {
        Err(ProviderError::Invalid(format!("No such payment_intent: '{provider_ref}'")))
    }
}

/// What the simulated provider does with `payment_method`.
pub fn outcome(payment_method: &str) -> Result<(), Failure> {
    let Some(name) = payment_method.strip_prefix("pm_card_") else {
        return Err(Failure {
            code: "resource_missing".into(),
            decline_code: None,
            message: format!("No such PaymentMethod: '{payment_method}'"),
        });
    };
    if SUCCEEDING.contains(&name) {
        return Ok(());
    }
    match DECLINES.iter().find(|(suffix, ..)| *suffix == name) {
        Some((_, code, decline_code, message)) => Err(Failure {
            code: (*code).into(),
            decline_code: decline_code.map(Into::into),
            message: (*message).into(),
        }),
        None => Err(Failure {
            code: "resource_missing".into(),
            decline_code: None,
            message: format!("No such PaymentMethod: '{payment_method}'"),
        }),
    }
}

fn status_refusal(provider_ref: &str, state: &IntentState, action: &str) -> ProviderError {
    let status = match state {
        IntentState::Authorized => "requires_capture",
        IntentState::Captured => "succeeded",
        IntentState::Cancelled => "canceled",
        IntentState::Other(other) => other.as_str(),
    };
    ProviderError::Invalid(format!(
        "You cannot {action} this PaymentIntent ({provider_ref}) because it has a status of {status}."
    ))
}

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn authorize(
        &self,
        amount: &Money,
        payment_method: &str,
        order_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, ProviderError> {
        self.call().await?;
        if amount.amount <= 0 {
            return self.answer(Err(ProviderError::Invalid("amount must be positive".into())));
        }
        if let Err(failure) = outcome(payment_method) {
            return self.answer(Err(ProviderError::Refused(failure)));
        }
        let provider_ref = reference("pi", idempotency_key);
        self.intents().insert(&provider_ref, order_id);
        self.answer(Ok(Authorization { provider_ref }))
    }

    async fn capture(&self, provider_ref: &str, _amount: &Money, _idempotency_key: &str) -> Result<(), ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)?;
        let outcome = {
            let mut intents = self.intents();
            match intents.state(provider_ref) {
                IntentState::Authorized if self.refuse_captures.load(Ordering::SeqCst) => {
                    // Stripe cancels an authorization that lapsed uncaptured.
                    intents.states.insert(provider_ref.to_owned(), IntentState::Cancelled);
                    Err(status_refusal(provider_ref, &IntentState::Cancelled, "capture"))
                }
                IntentState::Authorized | IntentState::Captured => {
                    intents.states.insert(provider_ref.to_owned(), IntentState::Captured);
                    Ok(())
                }
                other => Err(status_refusal(provider_ref, &other, "capture")),
            }
        };
        self.answer(outcome)
    }

    async fn cancel(&self, provider_ref: &str, _idempotency_key: &str) -> Result<(), ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)?;
        let outcome = {
            let mut intents = self.intents();
            match intents.state(provider_ref) {
                IntentState::Authorized | IntentState::Cancelled => {
                    intents.states.insert(provider_ref.to_owned(), IntentState::Cancelled);
                    Ok(())
                }
                other => Err(status_refusal(provider_ref, &other, "cancel")),
            }
        };
        self.answer(outcome)
    }

    async fn refund(
        &self,
        provider_ref: &str,
        _amount: &Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)?;
        let outcome = {
            let mut intents = self.intents();
            match intents.states.get(provider_ref) {
                Some(state @ (IntentState::Cancelled | IntentState::Other(_))) => {
                    Err(status_refusal(provider_ref, state, "refund"))
                }
                _ => {
                    let id = reference("re", idempotency_key);
                    let state = match intents.refunds.get(&id) {
                        // The same key answers the same refund, as it stands.
                        Some(RefundState::Failed(why)) => Err(ProviderError::Invalid(why.clone())),
                        Some(state) => Ok(state.clone()),
                        None if self.pending_refunds.load(Ordering::SeqCst) => {
                            intents.refunds.insert(id.clone(), RefundState::Pending);
                            Ok(RefundState::Pending)
                        }
                        None => Ok(RefundState::Succeeded),
                    };
                    state.map(|state| ProviderRefund { id, state })
                }
            }
        };
        self.answer(outcome)
    }

    async fn refund_state(&self, refund_id: &str) -> Result<RefundState, ProviderError> {
        self.call().await?;
        // One it never held pending (or from before a restart) went through at once.
        let state = self.intents().refunds.get(refund_id).cloned().unwrap_or(RefundState::Succeeded);
        self.answer(Ok(state))
    }

    async fn retrieve(&self, provider_ref: &str) -> Result<IntentState, ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)?;
        let state = self.intents().state(provider_ref);
        self.answer(Ok(state))
    }

    async fn find(&self, order_id: &str) -> Result<Option<Intent>, ProviderError> {
        self.call().await?;
        let found = {
            let intents = self.intents();
            intents
                .by_order
                .get(order_id)
                .map(|provider_ref| Intent { provider_ref: provider_ref.clone(), state: intents.state(provider_ref) })
        };
        self.answer(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stripe_test_methods_succeed_or_decline_as_stripe_documents() {
        let provider = SimulatedProvider::default();
        let usd = Money::new(1999, "USD");
        let first = provider.authorize(&usd, "pm_card_visa", "o1", "k1").await.unwrap();
        assert_eq!(provider.authorize(&usd, "pm_card_visa", "o1", "k1").await.unwrap(), first, "same key, same intent");
        assert_ne!(provider.authorize(&usd, "pm_card_visa", "o1", "k2").await.unwrap(), first);
        let declined = |method: &'static str| async move {
            match SimulatedProvider::default().authorize(&Money::new(100, "USD"), method, "o", "k").await {
                Err(ProviderError::Refused(failure)) => (failure.code, failure.decline_code),
                other => panic!("{method}: {other:?}"),
            }
        };
        assert_eq!(declined("pm_card_chargeDeclined").await, ("card_declined".into(), Some("generic_decline".into())));
        assert_eq!(
            declined("pm_card_chargeDeclinedInsufficientFunds").await,
            ("card_declined".into(), Some("insufficient_funds".into()))
        );
        assert_eq!(declined("pm_card_nope").await.0, "resource_missing");
        let refund = provider.refund(&first.provider_ref, &usd, "r1").await.unwrap();
        assert!(refund.id.starts_with("re_sim_") && refund.state == RefundState::Succeeded);
        assert!(matches!(provider.capture("pi_real", &usd, "c").await, Err(ProviderError::Invalid(_))));
    }

    #[tokio::test]
    async fn it_keeps_each_payments_state_and_refuses_as_stripe_does() {
        let provider = SimulatedProvider::default();
        let usd = Money::new(500, "USD");
        let held = provider.authorize(&usd, "pm_card_visa", "o1", "k1").await.unwrap().provider_ref;
        assert_eq!(
            provider.find("o1").await.unwrap(),
            Some(Intent { provider_ref: held.clone(), state: IntentState::Authorized })
        );
        assert_eq!(provider.find("o2").await.unwrap(), None);
        provider.capture(&held, &usd, "c1").await.unwrap();
        assert_eq!(provider.retrieve(&held).await.unwrap(), IntentState::Captured);
        let refused = provider.cancel(&held, "v1").await;
        assert!(matches!(&refused, Err(ProviderError::Invalid(m)) if m.contains("succeeded")), "{refused:?}");

        // An answer lost after the provider acted: the payment is captured all the same.
        let other = provider.authorize(&usd, "pm_card_visa", "o3", "k3").await.unwrap().provider_ref;
        provider.lose_next_answers(1);
        assert!(matches!(provider.capture(&other, &usd, "c3").await, Err(ProviderError::Unavailable(_))));
        assert_eq!(provider.state_of(&other), IntentState::Captured);

        // A lapsed authorization: the capture is refused and the payment cancelled.
        let lapsed = provider.authorize(&usd, "pm_card_visa", "o4", "k4").await.unwrap().provider_ref;
        provider.refuse_captures(true);
        assert!(matches!(provider.capture(&lapsed, &usd, "c4").await, Err(ProviderError::Invalid(_))));
        assert_eq!(provider.retrieve(&lapsed).await.unwrap(), IntentState::Cancelled);
        // A reference from before a restart is taken for an authorization.
        assert_eq!(SimulatedProvider::default().retrieve(&held).await.unwrap(), IntentState::Authorized);
    }

    #[tokio::test]
    async fn failures_can_be_injected() {
        let provider = SimulatedProvider::default();
        provider.fail_next(2);
        let usd = Money::new(100, "USD");
        for _ in 0..2 {
            assert!(matches!(
                provider.authorize(&usd, "pm_card_visa", "o", "k").await,
                Err(ProviderError::Unavailable(_))
            ));
        }
        assert!(provider.authorize(&usd, "pm_card_visa", "o", "k").await.is_ok());
        assert_eq!(provider.calls(), 3);
        let always = SimulatedProvider::new(Duration::ZERO, 1.0);
        assert!(matches!(always.cancel("pi_sim_x", "k").await, Err(ProviderError::Unavailable(_))));
    }
}
