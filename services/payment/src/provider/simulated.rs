//! The simulated provider: the embedded mode's default and the test workhorse. It honours Stripe's
//! test payment methods (`pm_card_visa` and the other `pm_card_<brand>` succeed;
//! `pm_card_chargeDeclined…` decline with Stripe's codes), answers an idempotency key with the same
//! result every time (its references are derived from the key), and can be slowed down or made to
//! fail for fault tests.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use platform::money::Money;
use sha2::{Digest, Sha256};

use super::{Authorization, PaymentProvider, ProviderError};
use crate::domain::payment::Failure;

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
    /// Calls still to fail, whatever the rate (set by tests).
    fail_next: AtomicU32,
    /// Calls made, for tests.
    calls: AtomicU64,
}

impl SimulatedProvider {
    /// A provider answering after `latency`, failing `failure_rate` (0 to 1) of calls as
    /// unavailable.
    pub fn new(latency: Duration, failure_rate: f64) -> Self {
        Self { latency, failure_ppm: (failure_rate.clamp(0.0, 1.0) * 1e6) as u32, ..Self::default() }
    }

    /// Makes the next `calls` calls fail as if the provider were down.
    pub fn fail_next(&self, calls: u32) {
        self.fail_next.store(calls, Ordering::SeqCst);
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
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

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn authorize(
        &self,
        amount: &Money,
        payment_method: &str,
        _order_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, ProviderError> {
        self.call().await?;
        if amount.amount <= 0 {
            return Err(ProviderError::Invalid("amount must be positive".into()));
        }
        outcome(payment_method).map_err(ProviderError::Refused)?;
        Ok(Authorization { provider_ref: reference("pi", idempotency_key) })
    }

    async fn capture(&self, provider_ref: &str, _amount: &Money, _idempotency_key: &str) -> Result<(), ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)
    }

    async fn cancel(&self, provider_ref: &str, _idempotency_key: &str) -> Result<(), ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)
    }

    async fn refund(
        &self,
        provider_ref: &str,
        _amount: &Money,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        self.call().await?;
        invalid_ref(provider_ref)?;
        Ok(reference("re", idempotency_key))
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
        assert!(refund.starts_with("re_sim_"));
        assert!(matches!(provider.capture("pi_real", &usd, "c").await, Err(ProviderError::Invalid(_))));
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
