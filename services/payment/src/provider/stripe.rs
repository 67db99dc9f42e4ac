//! Stripe: PaymentIntents with manual capture, over Stripe's HTTP API (form-encoded requests,
//! JSON answers, `Authorization: Bearer <secret key>`, an `Idempotency-Key` on every POST).
//!
//! - authorize: `POST /v1/payment_intents` (`amount`, `currency`, `payment_method`, `confirm=true`,
//!   `capture_method=manual`, `payment_method_types[]=card`, `metadata[order_id]`); a
//!   `requires_capture` intent is an authorization; a 402 `card_error` (or an intent left in
//!   `requires_payment_method`) is a decline with Stripe's `code` and `decline_code`;
//! - capture: `POST /v1/payment_intents/{id}/capture` (`amount_to_capture`);
//! - cancel: `POST /v1/payment_intents/{id}/cancel`;
//! - refund: `POST /v1/refunds` (`payment_intent`, `amount`);
//! - retrieve: `GET /v1/payment_intents/{id}`, when a call was refused or its answer lost;
//! - find: `GET /v1/payment_intents/search` by `metadata['order_id']`, for an authorize whose
//!   answer never came (Stripe's search index trails writes by seconds, up to a minute).
//!
//! A timeout, a connection failure, a 409 (the same key in flight), a 429 or a 5xx is retried a
//! few times with the same idempotency key (Stripe answers a repeated key with the first result,
//! so nothing is charged twice), then reported as [`ProviderError::Unavailable`] for the caller to
//! retry later, again with the same key. The secret key is never logged.

use std::time::Duration;

use async_trait::async_trait;
use platform::money::Money;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{Authorization, Intent, IntentState, PaymentProvider, ProviderError, ProviderRefund, RefundState};
use crate::domain::payment::Failure;

/// The API version the adapter speaks.
pub const API_VERSION: &str = "2024-06-20";

/// Tries of one call before it is reported unavailable.
const TRIES: u32 = 3;

/// The Stripe adapter.
pub struct StripeProvider {
    client: reqwest::Client,
    base: Url,
    secret_key: SecretString,
    backoff: Duration,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProvider").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// Stripe's error object.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The parts of a PaymentIntent the adapter reads.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    last_payment_error: Option<StripeError>,
}

/// The parts of a Refund the adapter reads.
#[derive(Debug, Deserialize)]
struct RefundObject {
    id: String,
    status: String,
    #[serde(default)]
    failure_reason: Option<String>,
}

/// What a Refund's `status` says, `failure_reason` giving why it failed.
fn refund_state(refund: &RefundObject) -> RefundState {
    match refund.status.as_str() {
        "succeeded" => RefundState::Succeeded,
        "failed" | "canceled" => RefundState::Failed(match &refund.failure_reason {
            Some(reason) => format!("the refund is {} ({reason})", refund.status),
            None => format!("the refund is {}", refund.status),
        }),
        // `pending`, `requires_action` and anything newer: not settled either way.
        _ => RefundState::Pending,
    }
}

/// A failed call, before it is mapped to a [`ProviderError`].
enum CallError {
    /// Worth trying again with the same key.
    Transient(Box<dyn std::error::Error + Send + Sync>),
    /// Stripe answered with an error object.
    Stripe(StatusCode, StripeError),
    /// Anything else.
    Other(String),
    /// What happened is unknown, or cannot be fixed by this request: report unavailable, so the
    /// step is tried again later (with the same key) rather than given up as refused.
    Unreadable(String),
}

fn failure(error: &StripeError, fallback: &str) -> Failure {
    Failure {
        code: error.code.clone().unwrap_or_else(|| fallback.to_owned()),
        decline_code: error.decline_code.clone(),
        message: error.message.clone().unwrap_or_else(|| "The payment was declined.".into()),
    }
}

impl StripeProvider {
    /// An adapter calling `base` (`https://api.stripe.com`) with `secret_key`, each request given
    /// at most `timeout`.
    pub fn new(base: Url, secret_key: SecretString, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("shop/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, base, secret_key, backoff: Duration::from_millis(200) })
    }

    /// Waits `backoff`, doubling, between tries (tests shorten it).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// POSTs `form` to `path` with `idempotency_key`, retrying passing failures; the JSON answer.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<T, CallError> {
        let url = self.base.join(path).map_err(|e| CallError::Other(e.to_string()))?;
        let body = {
            let mut encoder = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in form {
                encoder.append_pair(name, value);
            }
            encoder.finish()
        };
        self.call(path, url, Some((body, idempotency_key))).await
    }

    /// GETs `path` with `query`, retrying passing failures; the JSON answer.
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, CallError> {
        let mut url = self.base.join(path).map_err(|e| CallError::Other(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.call(path, url, None).await
    }

    /// Sends a request (a POST when `post` gives its body and key), retrying passing failures.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        url: Url,
        post: Option<(String, &str)>,
    ) -> Result<T, CallError> {
        let mut last = None;
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
            }
            match self.send_once(url.clone(), post.as_ref().map(|(body, key)| (body.clone(), *key))).await {
                Err(CallError::Transient(error)) => {
                    tracing::warn!(stripe.path = path, attempt = attempt + 1, error = %error,
                        "stripe call failed; retrying (a POST with the same idempotency key)");
                    last = Some(error);
                }
                outcome => return outcome,
            }
        }
        Err(CallError::Transient(last.unwrap_or_else(|| "no attempt made".into())))
    }

    async fn send_once<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        post: Option<(String, &str)>,
    ) -> Result<T, CallError> {
        let request = match post {
            Some((body, idempotency_key)) => self
                .client
                .post(url)
                .header("Idempotency-Key", idempotency_key)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body),
            None => self.client.get(url),
        };
        let response = request
            .bearer_auth(self.secret_key.expose_secret())
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| CallError::Transient(Box::new(e)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| CallError::Transient(Box::new(e)))?;
        if status.is_success() {
            // Not knowing what happened is not a refusal: the caller asks again (same key) later.
            return serde_json::from_slice(&bytes)
                .map_err(|e| CallError::Unreadable(format!("an answer Stripe never gives: {e}")));
        }
        let error = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.error).ok();
        match (status, error) {
            (StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS, _) => {
                Err(CallError::Transient(format!("stripe answered {status}").into()))
            }
            // Our key was refused (revoked, rotated): nothing was done; fixable without us.
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
                Err(CallError::Unreadable(format!("stripe refused the API key ({status})")))
            }
            (_, Some(error)) if error.kind == "idempotency_error" => Err(CallError::Unreadable(format!(
                "stripe refused the idempotency key: {}",
                error.message.unwrap_or_default()
            ))),
            (status, _) if status.is_server_error() => {
                Err(CallError::Transient(format!("stripe answered {status}").into()))
            }
            (status, Some(error)) => Err(CallError::Stripe(status, error)),
            (status, None) => Err(CallError::Other(format!("stripe answered {status} without an error object"))),
        }
    }
}

fn provider_error(error: CallError) -> ProviderError {
    match error {
        CallError::Transient(error) => ProviderError::Unavailable(error),
        CallError::Stripe(status, error) => {
            ProviderError::Invalid(format!("{status}: {}: {}", error.kind, error.message.unwrap_or_default()))
        }
        CallError::Other(message) => ProviderError::Invalid(message),
        CallError::Unreadable(message) => ProviderError::Unavailable(message.into()),
    }
}

/// Where a PaymentIntent of `status` stands.
fn intent_state(status: &str) -> IntentState {
    match status {
        "requires_capture" => IntentState::Authorized,
        "succeeded" => IntentState::Captured,
        "canceled" => IntentState::Cancelled,
        other => IntentState::Other(other.to_owned()),
    }
}

/// A page of search results.
#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntent>,
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn authorize(
        &self,
        amount: &Money,
        payment_method: &str,
        order_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, ProviderError> {
        let form = [
            ("amount", amount.amount.to_string()),
            ("currency", amount.currency.to_ascii_lowercase()),
            ("payment_method", payment_method.to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("confirm", "true".to_owned()),
            ("capture_method", "manual".to_owned()),
            ("metadata[order_id]", order_id.to_owned()),
        ];
        match self.post::<PaymentIntent>("/v1/payment_intents", &form, idempotency_key).await {
            Ok(intent) if intent.status == "requires_capture" || intent.status == "succeeded" => {
                Ok(Authorization { provider_ref: intent.id })
            }
            Ok(intent) if intent.status == "requires_action" => Err(ProviderError::Refused(Failure {
                code: "authentication_required".into(),
                decline_code: None,
                message: "The card needs the shopper to authenticate, which this checkout does not offer.".into(),
            })),
            Ok(intent) => {
                let fallback = StripeError { kind: String::new(), code: None, decline_code: None, message: None };
                let error = intent.last_payment_error.unwrap_or(fallback);
                Err(ProviderError::Refused(failure(&error, "card_declined")))
            }
            // A decline (402), or a payment method Stripe does not know (400 resource_missing).
            Err(CallError::Stripe(status, error))
                if error.kind == "card_error"
                    || (status == StatusCode::BAD_REQUEST
                        && matches!(error.code.as_deref(), Some("resource_missing" | "payment_method_invalid"))) =>
            {
                Err(ProviderError::Refused(failure(&error, "card_declined")))
            }
            Err(other) => Err(provider_error(other)),
        }
    }

    async fn capture(&self, provider_ref: &str, amount: &Money, idempotency_key: &str) -> Result<(), ProviderError> {
        let path = format!("/v1/payment_intents/{provider_ref}/capture");
        let form = [("amount_to_capture", amount.amount.to_string())];
        let intent: PaymentIntent = self.post(&path, &form, idempotency_key).await.map_err(provider_error)?;
        match intent.status.as_str() {
            "succeeded" => Ok(()),
            other => Err(ProviderError::Invalid(format!("the captured intent is {other}"))),
        }
    }

    async fn cancel(&self, provider_ref: &str, idempotency_key: &str) -> Result<(), ProviderError> {
        let path = format!("/v1/payment_intents/{provider_ref}/cancel");
        let intent: PaymentIntent = self.post(&path, &[], idempotency_key).await.map_err(provider_error)?;
        match intent.status.as_str() {
            "canceled" => Ok(()),
            other => Err(ProviderError::Invalid(format!("the cancelled intent is {other}"))),
        }
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let form = [("payment_intent", provider_ref.to_owned()), ("amount", amount.amount.to_string())];
        let refund: RefundObject = self.post("/v1/refunds", &form, idempotency_key).await.map_err(provider_error)?;
        match refund_state(&refund) {
            RefundState::Failed(why) => Err(ProviderError::Invalid(why)),
            state => Ok(ProviderRefund { id: refund.id, state }),
        }
    }

    async fn refund_state(&self, refund_id: &str) -> Result<RefundState, ProviderError> {
        if refund_id.is_empty() || !refund_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ProviderError::Invalid(format!("not a Stripe refund id: {refund_id:?}")));
        }
        let refund: RefundObject = self.get(&format!("/v1/refunds/{refund_id}"), &[]).await.map_err(provider_error)?;
        Ok(refund_state(&refund))
    }

    async fn retrieve(&self, provider_ref: &str) -> Result<IntentState, ProviderError> {
        let path = format!("/v1/payment_intents/{provider_ref}");
        let intent: PaymentIntent = self.get(&path, &[]).await.map_err(provider_error)?;
        Ok(intent_state(&intent.status))
    }

    async fn find(&self, order_id: &str) -> Result<Option<Intent>, ProviderError> {
        // Our order ids are `ord_` and hex, so they need no escaping in a search query.
        if !order_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(ProviderError::Invalid(format!("an order id Stripe cannot be searched by: {order_id:?}")));
        }
        let query = format!("metadata['order_id']:'{order_id}'");
        let found: SearchResult = self
            .get("/v1/payment_intents/search", &[("query", query.as_str()), ("limit", "10")])
            .await
            .map_err(provider_error)?;
        // One authorize per order; were there more, the one still holding money matters most.
        let rank = |state: &IntentState| match state {
            IntentState::Captured => 0,
            IntentState::Authorized => 1,
            _ => 2,
        };
        let intents = found
            .data
            .into_iter()
            .map(|intent| Intent { state: intent_state(&intent.status), provider_ref: intent.id });
        Ok(intents.min_by_key(|intent| rank(&intent.state)))
    }
}
