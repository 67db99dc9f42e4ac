//! What the payment service does with a payment: authorize, capture, void and refund through the
//! provider, recording every step in the store with its event. Used by the saga's command
//! consumer, the admin API and the webhook.
//!
//! The provider is always called with an idempotency key derived from our ids and the store is
//! always moved conditionally on the status read, so a step repeated (a redelivered command, a
//! retried request, a crash between the provider's answer and our commit) never charges twice.

use std::sync::Arc;

use chrono::Utc;
use platform::contracts::payment::{Authorize, CaptureFailed, Failed, PaymentEvent};
use platform::events::Event;
use platform::money::{Money, is_currency_code};
use sha2::{Digest, Sha256};

use crate::NAME;

pub mod reconcile;

/// The log entry of a hold placed by an authorization that lost the race with a void, before it
/// is released.
const HOLD_TO_CANCEL: &str = "authorization_to_cancel";

/// The log entry of that hold released.
const HOLD_CANCELLED: &str = "authorization_cancelled";

/// The log entry of a payment voided: its authorization cancelled, or voided before the provider
/// answered its authorization (then the provider is asked once whether it holds anything).
const VOIDED: &str = "voided";

/// The log entry of the provider asked, after such a void, whether it holds anything.
const PROVIDER_CHECKED: &str = "provider_checked";

/// The log entry of a capture the provider made although our call seemed to fail.
const CAPTURED_AT_PROVIDER: &str = "captured_at_provider";

use crate::domain::payment::{
    Failure, NewPayment, Payment, PaymentStatus, Refund, RefundStatus, Transition, is_payment_method_token, stamp,
};
use crate::provider::{IntentState, PaymentProvider, ProviderError, ProviderRefund, RefundState};
use crate::store::{PaymentStore, RefundOutcome, StoreError};

/// Why a payment step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider is unavailable: try again later (with the same keys).
    #[error("the payment provider is unavailable")]
    Unavailable(#[source] ProviderError),
    /// The provider refused the request.
    #[error("the payment provider refused the request: {0}")]
    Provider(String),
    /// The step does not apply to the payment as it stands.
    #[error("{0}")]
    State(String),
    /// No payment.
    #[error("no payment for {0}")]
    Unknown(String),
}

impl platform::error::Kinded for PaymentError {
    fn kind(&self) -> platform::error::ErrorKind {
        use platform::error::ErrorKind;
        match self {
            Self::Store(store) => store.kind(),
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Provider(_) | Self::State(_) => ErrorKind::Conflict,
            Self::Unknown(_) => ErrorKind::NotFound,
        }
    }
}

fn provider_error(error: ProviderError) -> PaymentError {
    match error {
        ProviderError::Unavailable(_) => PaymentError::Unavailable(error),
        ProviderError::Refused(failure) => PaymentError::Provider(format!("{}: {}", failure.code, failure.message)),
        ProviderError::Invalid(message) => PaymentError::Provider(message),
    }
}

/// The event `kind` about `payment` and `amount`, tied to its cause.
pub fn payment_event(kind: &str, payment: &Payment, amount: i64, cause: Option<&Event>) -> Event {
    let data = PaymentEvent {
        order_id: payment.order_id.clone(),
        payment_id: payment.id.clone(),
        amount: Money { amount, currency: payment.amount.currency.clone() },
        provider_ref: payment.provider_ref.clone(),
    };
    Event::new(kind, NAME, data).with_subject(payment.order_id.clone()).with_cause(cause)
}

fn failed_event(payment: &Payment, failure: &Failure, cause: Option<&Event>) -> Event {
    let data = Failed {
        order_id: payment.order_id.clone(),
        payment_id: payment.id.clone(),
        code: failure.code.clone(),
        decline_code: failure.decline_code.clone(),
        message: failure.message.clone(),
    };
    Event::new(Failed::KIND, NAME, data).with_subject(payment.order_id.clone()).with_cause(cause)
}

fn capture_failed_event(payment: &Payment, reason: &str, cause: Option<&Event>) -> Event {
    let data = CaptureFailed { order_id: payment.order_id.clone(), reason: reason.to_owned() };
    Event::new(CaptureFailed::KIND, NAME, data).with_subject(payment.order_id.clone()).with_cause(cause)
}

/// The id of a refund asked for with `key`: the same key always names the same refund (and is
/// the provider's idempotency key).
pub fn refund_id(payment_id: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{payment_id}\n{key}").as_bytes());
    format!("re_{}", &hex::encode(digest)[..28])
}

/// The payment steps.
#[derive(Clone)]
pub struct Payments {
    store: Arc<dyn PaymentStore>,
    provider: Arc<dyn PaymentProvider>,
}

impl Payments {
    /// Steps recorded in `store` (whose events leave through its outbox), taken with `provider`.
    pub fn new(store: Arc<dyn PaymentStore>, provider: Arc<dyn PaymentProvider>) -> Self {
        Self { store, provider }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn PaymentStore> {
        &self.store
    }

    async fn move_to(
        &self,
        payment: &Payment,
        from: &[PaymentStatus],
        transition: Transition,
        events: &[Event],
    ) -> Result<Option<Payment>, PaymentError> {
        Ok(self.store.transition(&payment.id, from, &transition, events).await?)
    }

    async fn fail(&self, payment: &Payment, failure: Failure, cause: Option<&Event>) -> Result<Payment, PaymentError> {
        let mut transition = Transition::new(PaymentStatus::Failed, "failed", payment.amount.amount);
        transition.detail = failure.decline_code.clone().unwrap_or_else(|| failure.code.clone());
        let event = failed_event(payment, &failure, cause);
        transition.failure = Some(failure);
        let moved = self.move_to(payment, &[PaymentStatus::Pending], transition, &[event]).await?;
        self.current(payment, moved).await
    }

    /// The payment as it is now: `moved` when this step moved it, else read again.
    async fn current(&self, payment: &Payment, moved: Option<Payment>) -> Result<Payment, PaymentError> {
        match moved {
            Some(payment) => Ok(payment),
            None => self.store.get(&payment.id).await?.ok_or_else(|| PaymentError::Unknown(payment.id.clone())),
        }
    }

    /// Authorizes the order's amount (once per order, whatever the redeliveries): `authorized` or
    /// `failed`, each answered with its event. A payment method that is not a provider token is
    /// refused without being stored.
    #[tracing::instrument(skip_all, fields(order.id = %command.order_id))]
    pub async fn authorize(&self, command: &Authorize, cause: Option<&Event>) -> Result<Payment, PaymentError> {
        let token = is_payment_method_token(&command.payment_method);
        let new = NewPayment {
            order_id: command.order_id.clone(),
            customer_id: command.customer_id.clone(),
            amount: command.amount.clone(),
            payment_method: if token { command.payment_method.clone() } else { "(not a token)".into() },
            provider: self.provider.name().to_owned(),
        };
        let (payment, _) = self.store.open(&new, PaymentStatus::Pending).await?;
        if payment.status == PaymentStatus::Voided && payment.provider_ref.is_some() {
            // Voided while the provider was authorizing: the hold it placed may not be released yet.
            return self.cancel_stray_hold(&payment).await;
        }
        if payment.status != PaymentStatus::Pending {
            // Decided before (a redelivery), or voided before it was authorized.
            return Ok(payment);
        }
        if !token {
            let failure = Failure {
                code: "payment_method_invalid".into(),
                decline_code: None,
                message: "the payment method must be a token from the payment provider".into(),
            };
            return self.fail(&payment, failure, cause).await;
        }
        if payment.amount.amount <= 0 || !is_currency_code(&payment.amount.currency) {
            let failure = Failure {
                code: "amount_invalid".into(),
                decline_code: None,
                message: "the amount is not valid".into(),
            };
            return self.fail(&payment, failure, cause).await;
        }
        let authorized = self
            .provider
            .authorize(&payment.amount, &payment.payment_method, &payment.order_id, &payment.key("authorize"))
            .await;
        match authorized {
            Ok(authorization) => {
                let mut transition = Transition::new(PaymentStatus::Authorized, "authorized", payment.amount.amount);
                transition.provider_ref = Some(authorization.provider_ref.clone());
                let mut event_payment = payment.clone();
                event_payment.provider_ref = Some(authorization.provider_ref.clone());
                let event = payment_event(PaymentEvent::AUTHORIZED, &event_payment, payment.amount.amount, cause);
                let moved = self.move_to(&payment, &[PaymentStatus::Pending], transition, &[event]).await?;
                if moved.is_none() {
                    // Voided while the provider was authorizing: let the hold it placed go.
                    if let Some(released) = self.release_stray_hold(&payment, authorization.provider_ref).await? {
                        return Ok(released);
                    }
                }
                self.current(&payment, moved).await
            }
            Err(ProviderError::Refused(failure)) => self.fail(&payment, failure, cause).await,
            Err(ProviderError::Invalid(message)) => {
                let failure = Failure { code: "provider_error".into(), decline_code: None, message };
                self.fail(&payment, failure, cause).await
            }
            Err(unavailable @ ProviderError::Unavailable(_)) => Err(PaymentError::Unavailable(unavailable)),
        }
    }

    /// Records the hold `provider_ref` the provider placed for a payment already voided (so a crash
    /// or an outage before it is released leaves it to be released on redelivery), then releases
    /// it; `None` when the payment is no longer voided.
    async fn release_stray_hold(
        &self,
        payment: &Payment,
        provider_ref: String,
    ) -> Result<Option<Payment>, PaymentError> {
        let mut transition = Transition::new(PaymentStatus::Voided, HOLD_TO_CANCEL, 0);
        transition.provider_ref = Some(provider_ref);
        match self.move_to(payment, &[PaymentStatus::Voided], transition, &[]).await? {
            Some(held) => Ok(Some(self.cancel_stray_hold(&held).await?)),
            None => Ok(None),
        }
    }

    /// Releases the hold of a payment voided while the provider authorized it, unless that was
    /// done before.
    async fn cancel_stray_hold(&self, payment: &Payment) -> Result<Payment, PaymentError> {
        let log = self.store.log(&payment.id).await?;
        let pending = log.iter().rposition(|e| e.kind == HOLD_TO_CANCEL);
        let done = log.iter().rposition(|e| e.kind == HOLD_CANCELLED);
        if pending.is_none() || done > pending {
            return Ok(payment.clone());
        }
        let provider_ref = payment.provider_ref.clone().unwrap_or_default();
        self.provider.cancel(&provider_ref, &payment.key("void")).await.map_err(provider_error)?;
        let transition = Transition::new(PaymentStatus::Voided, HOLD_CANCELLED, 0);
        let moved = self.move_to(payment, &[PaymentStatus::Voided], transition, &[]).await?;
        self.current(payment, moved).await
    }

    /// Logs `kind` about `amount` (with `detail` and `events`) on a payment without moving it;
    /// `None` when its status changed meanwhile (the caller decides again).
    async fn note(
        &self,
        payment: &Payment,
        (kind, amount): (&str, i64),
        detail: &str,
        events: &[Event],
    ) -> Result<Option<Payment>, PaymentError> {
        let mut transition = Transition::new(payment.status, kind, amount);
        transition.detail = detail.to_owned();
        self.move_to(payment, &[payment.status], transition, events).await
    }

    /// Captures the order's authorized payment (once), answering `captured` every time it is asked
    /// while the money is charged (so a re-sent command moves the order on), and
    /// `capture_failed` when it never can be: the authorization was cancelled or lapsed at the
    /// provider, or the payment was voided, refunded, refused or never made.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn capture(&self, order_id: &str, cause: Option<&Event>) -> Result<Payment, PaymentError> {
        let payment = match self.store.by_order(order_id).await? {
            Some(payment) => payment,
            None => {
                // Nothing to capture: a voided placeholder, so a late authorize charges nothing.
                let (payment, _) = self.placeholder(order_id).await?;
                if payment.status != PaymentStatus::Voided {
                    return Box::pin(self.capture(order_id, cause)).await;
                }
                return self.refuse_capture(&payment, "no_payment", cause).await;
            }
        };
        let refusal = match payment.status {
            PaymentStatus::Authorized => None,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                let event = payment_event(PaymentEvent::CAPTURED, &payment, payment.captured, cause);
                let detail = "the capture was asked for again";
                return match self.note(&payment, ("capture_confirmed", payment.captured), detail, &[event]).await? {
                    Some(payment) => Ok(payment),
                    None => Box::pin(self.capture(order_id, cause)).await,
                };
            }
            PaymentStatus::Refunded => Some("refunded"),
            PaymentStatus::Voided => Some("voided"),
            PaymentStatus::Failed => Some("authorization_failed"),
            PaymentStatus::Pending => Some("not_authorized"),
        };
        if let Some(reason) = refusal {
            return self.refuse_capture(&payment, reason, cause).await;
        }
        let provider_ref = payment.provider_ref.clone().unwrap_or_default();
        let refused = match self.provider.capture(&provider_ref, &payment.amount, &payment.key("capture")).await {
            Ok(()) => return self.record_capture(&payment, "captured", None, Some(cause)).await,
            Err(unavailable @ ProviderError::Unavailable(_)) => return Err(PaymentError::Unavailable(unavailable)),
            Err(refused) => refused,
        };
        // Find out what the provider did before giving up on the money.
        match self.provider.retrieve(&provider_ref).await.map_err(provider_error)? {
            IntentState::Captured => self.record_capture(&payment, CAPTURED_AT_PROVIDER, None, Some(cause)).await,
            // Still held, but the provider will not capture it: the saga voids it.
            IntentState::Authorized => self.refuse_capture(&payment, &refused.to_string(), cause).await,
            state => {
                // Cancelled (a lapsed authorization, or cancelled at the provider): nothing is
                // held any more.
                let mut transition = Transition::new(PaymentStatus::Voided, "capture_refused", 0);
                transition.detail = format!("{refused} ({state:?} at the provider)");
                let event = capture_failed_event(&payment, "authorization_cancelled", cause);
                match self.move_to(&payment, &[PaymentStatus::Authorized], transition, &[event]).await? {
                    Some(payment) => Ok(payment),
                    None => Box::pin(self.capture(order_id, cause)).await,
                }
            }
        }
    }

    /// Records the capture the provider made of `payment` (authorized, or voided when we gave up
    /// on it before its answer came), as `kind`, with `provider_ref` when we learn it only now.
    /// `answer` is `Some(cause)` to answer `captured`; a capture found while voiding is not
    /// answered, since the void refunds it next.
    async fn record_capture(
        &self,
        payment: &Payment,
        kind: &str,
        provider_ref: Option<String>,
        answer: Option<Option<&Event>>,
    ) -> Result<Payment, PaymentError> {
        let mut transition = Transition::new(PaymentStatus::Captured, kind, payment.amount.amount);
        transition.captured = payment.amount.amount;
        transition.provider_ref = provider_ref;
        let events: Vec<Event> = answer
            .map(|cause| payment_event(PaymentEvent::CAPTURED, payment, payment.amount.amount, cause))
            .into_iter()
            .collect();
        let from = [PaymentStatus::Authorized, PaymentStatus::Voided];
        let moved = self.move_to(payment, &from, transition, &events).await?;
        self.current(payment, moved).await
    }

    /// Answers `capture_failed` for a payment that can never be captured, logging the refusal.
    async fn refuse_capture(
        &self,
        payment: &Payment,
        reason: &str,
        cause: Option<&Event>,
    ) -> Result<Payment, PaymentError> {
        let event = capture_failed_event(payment, reason, cause);
        match self.note(payment, ("capture_refused", 0), reason, &[event]).await? {
            Some(payment) => Ok(payment),
            // It changed meanwhile: decide again.
            None => Box::pin(self.capture(&payment.order_id, cause)).await,
        }
    }

    /// The voided payment that stands for an order's missing one (a void or capture that came
    /// before any authorize), and whether it was made now; or the payment an authorize made
    /// meanwhile.
    async fn placeholder(&self, order_id: &str) -> Result<(Payment, bool), PaymentError> {
        let placeholder = NewPayment {
            order_id: order_id.to_owned(),
            customer_id: String::new(),
            amount: Money::zero("XXX"),
            payment_method: "(none)".into(),
            provider: self.provider.name().to_owned(),
        };
        Ok(self.store.open(&placeholder, PaymentStatus::Voided).await?)
    }

    /// Releases the order's money: a pending payment is voided (the authorization in flight will
    /// be cancelled), an authorization cancelled, a capture refunded; an order with no payment
    /// gets a voided one, so a late authorize charges nothing.
    #[tracing::instrument(skip_all, fields(order.id = %order_id))]
    pub async fn void(&self, order_id: &str, reason: &str, cause: Option<&Event>) -> Result<Payment, PaymentError> {
        let Some(payment) = self.store.by_order(order_id).await? else {
            let (payment, created) = self.placeholder(order_id).await?;
            if !created {
                // An authorize got there first.
                return Box::pin(self.void(order_id, reason, cause)).await;
            }
            let event = payment_event(PaymentEvent::VOIDED, &payment, 0, cause);
            let mut transition = Transition::new(PaymentStatus::Voided, "void_requested", 0);
            transition.detail = reason.to_owned();
            let moved = self.move_to(&payment, &[PaymentStatus::Voided], transition, &[event]).await?;
            return self.current(&payment, moved).await;
        };
        let mut transition = Transition::new(PaymentStatus::Voided, VOIDED, payment.amount.amount);
        transition.detail = reason.to_owned();
        let voided = || [payment_event(PaymentEvent::VOIDED, &payment, payment.amount.amount, cause)];
        match payment.status {
            PaymentStatus::Pending => {
                match self.move_to(&payment, &[PaymentStatus::Pending], transition, &[]).await? {
                    // The authorize may have reached the provider with its answer lost: the void
                    // is answered only once the provider was asked (a hold it placed released, a
                    // capture refunded), so the saga never hears "voided" while a hold stands.
                    Some(voided) => {
                        let checked = self.check_provider(&voided, reason, cause).await?;
                        match checked.status {
                            PaymentStatus::Voided | PaymentStatus::Failed => {
                                let event = payment_event(PaymentEvent::VOIDED, &checked, checked.amount.amount, cause);
                                let answered = self.note(&checked, ("void_answered", 0), reason, &[event]).await?;
                                self.current(&checked, answered).await
                            }
                            // Refunded: the refund answered.
                            _ => Ok(checked),
                        }
                    }
                    // Authorized (or failed) meanwhile: void what it became.
                    None => Box::pin(self.void(order_id, reason, cause)).await,
                }
            }
            PaymentStatus::Authorized => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                match self.provider.cancel(&provider_ref, &payment.key("void")).await {
                    Ok(()) => {}
                    Err(unavailable @ ProviderError::Unavailable(_)) => {
                        return Err(PaymentError::Unavailable(unavailable));
                    }
                    Err(refused) => match self.provider.retrieve(&provider_ref).await.map_err(provider_error)? {
                        // Captured by a capture whose answer we lost: give the money back.
                        IntentState::Captured => {
                            self.record_capture(&payment, CAPTURED_AT_PROVIDER, None, None).await?;
                            return Box::pin(self.void(order_id, reason, cause)).await;
                        }
                        IntentState::Authorized => return Err(provider_error(refused)),
                        // Cancelled (or never held): nothing to release.
                        state => transition.detail = format!("{reason} ({state:?} at the provider)"),
                    },
                }
                match self.move_to(&payment, &[PaymentStatus::Authorized], transition, &voided()).await? {
                    Some(voided) => Ok(voided),
                    None => Box::pin(self.void(order_id, reason, cause)).await,
                }
            }
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                let key = self.void_refund_key(&payment).await?;
                Ok(self.refund(&payment, None, reason, &key, cause).await?.0)
            }
            PaymentStatus::Refunded => {
                // The void's refund may be recorded but not yet made (the provider was down), or
                // pending at the provider.
                let key = self.void_refund_key(&payment).await?;
                match self.store.get_refund(&refund_id(&payment.id, &key)).await? {
                    Some(refund) if refund.status == RefundStatus::Pending => {
                        Ok(self.refund(&payment, None, reason, &key, cause).await?.0)
                    }
                    _ => self.confirm_release(&payment, cause).await,
                }
            }
            PaymentStatus::Voided if payment.provider_ref.is_some() => {
                let payment = self.cancel_stray_hold(&payment).await?;
                self.confirm_release(&payment, cause).await
            }
            PaymentStatus::Voided => {
                let payment = self.check_provider(&payment, reason, cause).await?;
                self.confirm_release(&payment, cause).await
            }
            PaymentStatus::Failed => self.confirm_release(&payment, cause).await,
        }
    }

    /// Answers a void again for a payment that holds nothing any more (voided, failed, or
    /// refunded in full), so the saga that asked again knows its money went back.
    async fn confirm_release(&self, payment: &Payment, cause: Option<&Event>) -> Result<Payment, PaymentError> {
        let (kind, amount) = match payment.status {
            PaymentStatus::Refunded => (PaymentEvent::REFUNDED, payment.refunded),
            PaymentStatus::Voided | PaymentStatus::Failed => (PaymentEvent::VOIDED, payment.amount.amount),
            // It holds money again (found captured at the provider): the void goes on.
            _ => return Box::pin(self.void(&payment.order_id, "void asked again", cause)).await,
        };
        let event = payment_event(kind, payment, amount, cause);
        let moved = self.note(payment, ("release_confirmed", 0), "the void was asked for again", &[event]).await?;
        self.current(payment, moved).await
    }

    /// After a payment was voided before the provider answered its authorization (the answer
    /// lost, the step timed out): asks the provider whether it holds a payment for the order, and
    /// releases what it finds, so no hold stays open on the shopper's card. Done once per
    /// payment; a provider outage is retried with the command.
    async fn check_provider(
        &self,
        payment: &Payment,
        reason: &str,
        cause: Option<&Event>,
    ) -> Result<Payment, PaymentError> {
        let log = self.store.log(&payment.id).await?;
        let voided = log.iter().rposition(|e| e.kind == VOIDED);
        let checked = log.iter().rposition(|e| e.kind == PROVIDER_CHECKED);
        if voided.is_none() || checked > voided {
            return Ok(payment.clone());
        }
        let found = self.provider.find(&payment.order_id).await.map_err(provider_error)?;
        let (moved, detail) = match found {
            Some(intent) if intent.state == IntentState::Authorized => {
                (self.release_stray_hold(payment, intent.provider_ref).await?, "a hold found and released")
            }
            Some(intent) if intent.state == IntentState::Captured => {
                // Charged although we gave up on it: recorded, then refunded in full below.
                let captured =
                    self.record_capture(payment, CAPTURED_AT_PROVIDER, Some(intent.provider_ref), None).await?;
                let moved = (captured.status == PaymentStatus::Captured).then_some(captured);
                (moved, "a capture found; refunding it")
            }
            other => {
                let detail = match other {
                    Some(intent) => format!("{} is {:?}: nothing held", intent.provider_ref, intent.state),
                    None => "nothing held".to_owned(),
                };
                let moved = self.note(payment, (PROVIDER_CHECKED, 0), &detail, &[]).await?;
                return self.current(payment, moved).await;
            }
        };
        let Some(moved) = moved else {
            // It changed meanwhile: void what it became.
            return Box::pin(self.void(&payment.order_id, reason, cause)).await;
        };
        let checked = self.note(&moved, (PROVIDER_CHECKED, 0), detail, &[]).await?;
        let checked = self.current(&moved, checked).await?;
        if checked.status.is_charged() {
            Box::pin(self.void(&checked.order_id, reason, cause)).await
        } else {
            Ok(checked)
        }
    }

    /// Asks the provider again for every refund still pending since before `before` (its answer
    /// was lost, or it was down: asked again with the refund's id as the idempotency key; or it
    /// holds the refund pending: asked where it stands), and settles them; how many were settled.
    pub async fn retry_pending_refunds(&self, before: chrono::DateTime<Utc>) -> Result<usize, PaymentError> {
        let mut settled = 0;
        for refund in self.store.pending_refunds(before, 100).await? {
            let Some(payment) = self.store.get(&refund.payment_id).await? else { continue };
            match self.settle_pending(&payment, &refund, None).await {
                Ok((_, refund)) if refund.status == RefundStatus::Pending => {}
                Ok(_) => settled += 1,
                // Still down: the next round tries again.
                Err(PaymentError::Unavailable(_)) => break,
                Err(error) => tracing::warn!(refund = %refund.id, %error, "a pending refund was refused"),
            }
        }
        Ok(settled)
    }

    /// Refunds `amount` (all that is left when `None`) of a charged payment, once per `key`: the
    /// refund is recorded first (so refunds together never exceed the capture), then the provider
    /// is asked with the refund's id as its idempotency key, then the refund is settled. Asked
    /// again with the same key (after a provider outage), it carries on where it stopped.
    #[tracing::instrument(skip_all, fields(order.id = %payment.order_id, payment.id = %payment.id))]
    pub async fn refund(
        &self,
        payment: &Payment,
        amount: Option<i64>,
        reason: &str,
        key: &str,
        cause: Option<&Event>,
    ) -> Result<(Payment, Refund), PaymentError> {
        let id = refund_id(&payment.id, key);
        let refund = match self.store.get_refund(&id).await? {
            Some(existing) => existing,
            None => {
                let amount = amount.unwrap_or_else(|| payment.refundable());
                let refund = Refund {
                    id: id.clone(),
                    payment_id: payment.id.clone(),
                    amount: Money { amount, currency: payment.amount.currency.clone() },
                    status: RefundStatus::Pending,
                    provider_ref: None,
                    reason: reason.to_owned(),
                    created_at: stamp(Utc::now()),
                };
                self.store.refund(&refund, None, &[]).await?;
                refund
            }
        };
        if refund.status != RefundStatus::Pending {
            let payment =
                self.store.get(&payment.id).await?.ok_or_else(|| PaymentError::Unknown(payment.id.clone()))?;
            return Ok((payment, refund));
        }
        self.settle_pending(payment, &refund, cause).await
    }

    /// Asks the provider for a pending refund (its id is the idempotency key, so asking again
    /// never refunds twice), or, once the provider has it pending, where it stands; and settles
    /// it with the answer. A refund still pending at the provider stays pending here, and
    /// answers nothing yet.
    async fn settle_pending(
        &self,
        payment: &Payment,
        refund: &Refund,
        cause: Option<&Event>,
    ) -> Result<(Payment, Refund), PaymentError> {
        let outcome = match &refund.provider_ref {
            Some(at_provider) => match self.provider.refund_state(at_provider).await {
                Ok(RefundState::Succeeded) => Ok(RefundOutcome::Succeeded(at_provider.clone())),
                Ok(RefundState::Pending) => Ok(RefundOutcome::Pending(at_provider.clone())),
                Ok(RefundState::Failed(why)) => Ok(RefundOutcome::Failed(why)),
                Err(error) => Err(error),
            },
            None => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                match self.provider.refund(&provider_ref, &refund.amount, &refund.id).await {
                    Ok(ProviderRefund { id, state: RefundState::Pending }) => Ok(RefundOutcome::Pending(id)),
                    Ok(ProviderRefund { id, .. }) => Ok(RefundOutcome::Succeeded(id)),
                    Err(error) => Err(error),
                }
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(unavailable @ ProviderError::Unavailable(_)) => return Err(PaymentError::Unavailable(unavailable)),
            Err(ProviderError::Refused(failure)) => RefundOutcome::Failed(failure.message),
            Err(ProviderError::Invalid(message)) => RefundOutcome::Failed(message),
        };
        let refused = match &outcome {
            RefundOutcome::Failed(why) => Some(why.clone()),
            _ => None,
        };
        let event = payment_event(PaymentEvent::REFUNDED, payment, refund.amount.amount, cause);
        let payment = self.store.settle_refund(&refund.id, outcome, &[event]).await?;
        let refund = self.store.get_refund(&refund.id).await?.unwrap_or_else(|| refund.clone());
        match refused {
            Some(message) => Err(PaymentError::Provider(message)),
            None => Ok((payment, refund)),
        }
    }

    /// The key of the refund a void of `payment` makes: its first, unless the provider refused
    /// that one, then the next, up to [`VOID_REFUNDS`] (a refund the provider refuses that often
    /// is for people: the void is refused, and dead-lettered for operators).
    async fn void_refund_key(&self, payment: &Payment) -> Result<String, PaymentError> {
        for attempt in 0..VOID_REFUNDS {
            let key = match attempt {
                0 => format!("{}-void", payment.id),
                n => format!("{}-void-{n}", payment.id),
            };
            match self.store.get_refund(&refund_id(&payment.id, &key)).await? {
                Some(refund) if refund.status == RefundStatus::Failed => continue,
                _ => return Ok(key),
            }
        }
        platform::contracts::reconcile::count(NAME, "refund_refused", false);
        tracing::error!(payment_id = %payment.id, order_id = %payment.order_id,
            "the provider refused every refund of a void: the money stays charged until someone looks");
        Err(PaymentError::Provider(format!("the provider refused {VOID_REFUNDS} refunds of this payment")))
    }
}

/// Refunds a void tries before it gives up on a payment the provider will not refund.
const VOID_REFUNDS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_key_names_one_refund_per_payment() {
        assert_eq!(refund_id("pay_1", "k"), refund_id("pay_1", "k"));
        assert_ne!(refund_id("pay_1", "k"), refund_id("pay_2", "k"));
        assert_ne!(refund_id("pay_1", "k"), refund_id("pay_1", "k2"));
        assert!(refund_id("pay_1", "k").starts_with("re_"));
    }
}

/// The parts of a Stripe event the webhook applies.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StripeEvent {
    /// `evt_…`.
    pub id: String,
    /// `payment_intent.succeeded`, `charge.refunded`…
    #[serde(rename = "type")]
    pub kind: String,
    /// The object the event is about.
    pub data: StripeEventData,
}

/// A Stripe event's `data`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StripeEventData {
    /// The object (a PaymentIntent, a Charge, a Dispute) as Stripe sent it.
    pub object: serde_json::Value,
}

impl Payments {
    /// Applies a (verified) Stripe event to the payment it is about: a capture, cancellation,
    /// failure, refund or dispute that happened at Stripe (asynchronously, or from its
    /// dashboard). Applying an event twice changes nothing: each change is conditional on the
    /// payment's state. `false` when the event is about nothing we hold.
    #[tracing::instrument(skip_all, fields(stripe.event_id = %event.id, order.id, payment.id))]
    pub async fn apply_stripe_event(&self, event: &StripeEvent) -> Result<bool, PaymentError> {
        let object = &event.data.object;
        let text = |name: &str| object.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let number = |name: &str| object.get(name).and_then(serde_json::Value::as_i64);
        let intent = match event.kind.as_str() {
            kind if kind.starts_with("payment_intent.") => text("id"),
            _ => text("payment_intent"),
        };
        let Some(intent) = intent else { return Ok(false) };
        let Some(payment) = self.store.by_provider_ref(&intent).await? else { return Ok(false) };
        let span = tracing::Span::current();
        span.record("order.id", payment.order_id.as_str()).record("payment.id", payment.id.as_str());
        let kind = format!("webhook:{}", event.kind);
        match event.kind.as_str() {
            "payment_intent.succeeded" => {
                let amount = number("amount_received").unwrap_or(payment.amount.amount).min(payment.amount.amount);
                let mut transition = Transition::new(PaymentStatus::Captured, kind, amount);
                transition.captured = amount;
                transition.detail = event.id.clone();
                let published = payment_event(PaymentEvent::CAPTURED, &payment, amount, None);
                self.move_to(&payment, &[PaymentStatus::Authorized], transition, &[published]).await?;
            }
            "payment_intent.canceled" => {
                let mut transition = Transition::new(PaymentStatus::Voided, kind, payment.amount.amount);
                transition.detail = event.id.clone();
                let published = payment_event(PaymentEvent::VOIDED, &payment, payment.amount.amount, None);
                let from = [PaymentStatus::Pending, PaymentStatus::Authorized];
                self.move_to(&payment, &from, transition, &[published]).await?;
            }
            "payment_intent.payment_failed" => {
                let error = object.get("last_payment_error");
                let field = |name: &str| error.and_then(|e| e.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
                let failure = Failure {
                    code: field("code").unwrap_or_else(|| "card_declined".into()),
                    decline_code: field("decline_code"),
                    message: field("message").unwrap_or_else(|| "The payment failed.".into()),
                };
                let mut transition = Transition::new(PaymentStatus::Failed, kind, payment.amount.amount);
                transition.detail = event.id.clone();
                let published = failed_event(&payment, &failure, None);
                transition.failure = Some(failure);
                let from = [PaymentStatus::Pending, PaymentStatus::Authorized];
                self.move_to(&payment, &from, transition, &[published]).await?;
            }
            "charge.refunded" => {
                // Stripe's running total. Our pending refunds first: Stripe may have made them
                // (their answer was lost); asking again with their keys settles them.
                for refund in self.store.refunds(&payment.id).await? {
                    if refund.status == RefundStatus::Pending {
                        match self.settle_pending(&payment, &refund, None).await {
                            Ok(_) | Err(PaymentError::Provider(_)) => {}
                            Err(other) => return Err(other),
                        }
                    }
                }
                // What Stripe's running total adds to ours is a refund made at Stripe (its
                // dashboard). Ours counts the refunds still pending too (they are not at Stripe
                // yet, or this event would have settled them). It is recorded on condition that
                // ours did not move since it was read, so replicas applying this event (or
                // another with the same total) at once record it once.
                let total = number("amount_refunded").unwrap_or(0);
                let reference = text("id").unwrap_or_else(|| event.id.clone());
                for _ in 0..5 {
                    let payment =
                        self.store.get(&payment.id).await?.ok_or_else(|| PaymentError::Unknown(payment.id.clone()))?;
                    let missing = (total - payment.refunded).min(payment.refundable());
                    if missing <= 0 {
                        return Ok(true);
                    }
                    let id = refund_id(&payment.id, &format!("provider-total:{total}:{}", payment.refunded));
                    let refund = Refund {
                        id,
                        payment_id: payment.id.clone(),
                        amount: Money { amount: missing, currency: payment.amount.currency.clone() },
                        // Made at the provider already: recorded settled, never asked for.
                        status: RefundStatus::Succeeded,
                        provider_ref: Some(reference.clone()),
                        reason: "refunded at the provider".into(),
                        created_at: stamp(Utc::now()),
                    };
                    let published = payment_event(PaymentEvent::REFUNDED, &payment, missing, None);
                    match self.store.refund(&refund, Some(payment.refunded), &[published]).await {
                        Ok(_) => return Ok(true),
                        Err(StoreError::RefundedMoved { .. }) => continue,
                        Err(other) => return Err(other.into()),
                    }
                }
                return Err(PaymentError::State("the payment kept changing while the refund was recorded".into()));
            }
            "charge.refund.updated" | "refund.updated" => {
                // A refund left pending at the provider has ended (or moved): ours settles with
                // where the provider says it stands now (events may come out of order).
                let Some(at_provider) = text("id") else { return Ok(false) };
                let refunds = self.store.refunds(&payment.id).await?;
                let pending = refunds
                    .iter()
                    .find(|r| r.status == RefundStatus::Pending && r.provider_ref.as_deref() == Some(&at_provider));
                let Some(refund) = pending else { return Ok(false) };
                match self.settle_pending(&payment, refund, None).await {
                    Ok(_) | Err(PaymentError::Provider(_)) => {}
                    Err(other) => return Err(other),
                }
            }
            "charge.dispute.created" => {
                // The status stays; a redelivered event finds its log entry and adds none.
                for _ in 0..3 {
                    let payment =
                        self.store.get(&payment.id).await?.ok_or_else(|| PaymentError::Unknown(payment.id.clone()))?;
                    let log = self.store.log(&payment.id).await?;
                    if log.iter().any(|e| e.kind == kind && e.detail.split(' ').next() == Some(event.id.as_str())) {
                        return Ok(true);
                    }
                    let amount = number("amount").unwrap_or(payment.captured);
                    let mut transition = Transition::new(payment.status, kind.clone(), amount);
                    transition.detail =
                        format!("{} {}", event.id, text("reason").unwrap_or_default()).trim().to_owned();
                    let published = payment_event(PaymentEvent::DISPUTED, &payment, amount, None);
                    if self.move_to(&payment, &[payment.status], transition, &[published]).await?.is_some() {
                        return Ok(true);
                    }
                }
                return Err(PaymentError::State("the payment kept changing while the dispute was recorded".into()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
