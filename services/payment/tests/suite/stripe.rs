//! The Stripe adapter against a local stub of Stripe's API. The stub checks what we send (the
//! secret key, form encoding, the API version, an idempotency key on every POST, the parameters)
//! and answers in the shapes Stripe's API reference documents: PaymentIntent and Refund objects,
//! `card_error` declines with `code` and `decline_code` (HTTP 402), `invalid_request_error`
//! (400), and a repeated idempotency key answered with the first response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use platform::money::Money;
use secrecy::SecretString;
use serde_json::{Value, json};
use shop_payment::provider::stripe::{API_VERSION, StripeProvider};
use shop_payment::provider::{Intent, IntentState, PaymentProvider, ProviderError, RefundState};

const SECRET: &str = "sk_test_stub_0123456789";

/// One request the stub received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    key: String,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct Stub {
    seen: Vec<Seen>,
    /// Idempotency key → (the request's form, the status and body answered).
    answered: HashMap<String, (HashMap<String, String>, u16, Value)>,
    intents: HashMap<String, Value>,
    /// Requests still to answer slowly (after doing their work), to make the client time out.
    slow: usize,
    /// Requests still to fail with a 500 (before doing any work).
    failing: usize,
    /// POSTs still to answer too late, first tries and repeats alike (their work done once).
    stalled: usize,
    /// Whether refunds are answered `pending` (as for bank transfers).
    pending_refunds: bool,
    /// Refunds made, by id.
    refunds: HashMap<String, Value>,
}

type Shared = Arc<Mutex<Stub>>;

fn stripe_error(status: StatusCode, kind: &str, code: &str, decline: Option<&str>, message: &str) -> (u16, Value) {
    let mut error = json!({"type": kind, "code": code, "message": message});
    if let Some(decline) = decline {
        error["decline_code"] = json!(decline);
    }
    (status.as_u16(), json!({ "error": error }))
}

/// What Stripe answers to `path` with `form`, updating its state.
fn answer(stub: &mut Stub, path: &str, form: &HashMap<String, String>) -> (u16, Value) {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if path == "/v1/payment_intents" {
        let method = field("payment_method");
        let declined = match method.as_str() {
            "pm_card_chargeDeclined" => Some("generic_decline"),
            "pm_card_chargeDeclinedInsufficientFunds" => Some("insufficient_funds"),
            _ => None,
        };
        if let Some(decline) = declined {
            return stripe_error(
                StatusCode::PAYMENT_REQUIRED,
                "card_error",
                "card_declined",
                Some(decline),
                "Your card was declined.",
            );
        }
        if method != "pm_card_visa" {
            let message = format!("No such PaymentMethod: '{method}'");
            return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", "resource_missing", None, &message);
        }
        let id = format!("pi_stub_{}", stub.intents.len() + 1);
        let intent = json!({
            "id": id, "object": "payment_intent", "amount": field("amount").parse::<i64>().unwrap_or(0),
            "currency": field("currency"), "status": "requires_capture", "capture_method": "manual",
            "payment_method": method, "metadata": {"order_id": field("metadata[order_id]")},
        });
        stub.intents.insert(id, intent.clone());
        return (200, intent);
    }
    if path == "/v1/refunds" {
        let Some(intent) = stub.intents.get(&field("payment_intent")) else {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "resource_missing",
                None,
                "No such payment_intent",
            );
        };
        if field("amount").parse::<i64>().unwrap_or(0) > intent["amount_received"].as_i64().unwrap_or(0) {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "amount_too_large",
                None,
                "Refund amount is greater than the charge.",
            );
        }
        let id = format!("re_stub_{}", stub.seen.len());
        let status = if stub.pending_refunds { "pending" } else { "succeeded" };
        let refund = json!({"id": id, "object": "refund", "amount": field("amount").parse::<i64>().unwrap_or(0),
            "payment_intent": field("payment_intent"), "status": status});
        stub.refunds.insert(id, refund.clone());
        return (200, refund);
    }
    let parts: Vec<&str> = path.trim_start_matches("/v1/payment_intents/").split('/').collect();
    let (id, action) = (parts[0].to_owned(), parts.get(1).copied().unwrap_or_default());
    let Some(intent) = stub.intents.get_mut(&id) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            None,
            "No such payment_intent",
        );
    };
    match action {
        "capture" if intent["status"] == "requires_capture" => {
            let amount = field("amount_to_capture").parse::<i64>().unwrap_or(0);
            intent["status"] = json!("succeeded");
            intent["amount_received"] = json!(amount);
            (200, intent.clone())
        }
        "cancel" if intent["status"] == "requires_capture" => {
            intent["status"] = json!("canceled");
            (200, intent.clone())
        }
        _ => stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            None,
            "This PaymentIntent's state does not allow it.",
        ),
    }
}

async fn handle(State(stub): State<Shared>, Path(rest): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/v1/{rest}");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header("authorization") != format!("Bearer {SECRET}") {
        let (status, body) = stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            None,
            "Invalid API Key provided",
        );
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    assert_eq!(header("content-type"), "application/x-www-form-urlencoded", "Stripe takes form-encoded bodies");
    assert_eq!(header("stripe-version"), API_VERSION);
    let key = header("idempotency-key");
    assert!(!key.is_empty(), "every POST carries an idempotency key");
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (status, body, slow) = {
        let mut stub = stub.lock().unwrap();
        stub.seen.push(Seen { path: path.clone(), key: key.clone(), form: form.clone() });
        if stub.failing > 0 {
            stub.failing -= 1;
            let (status, body) = stripe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "api_error",
                None,
                "Something went wrong.",
            );
            (status, body, false)
        } else if let Some((first_form, status, body)) = stub.answered.get(&key).cloned() {
            if first_form == form {
                (status, body, false)
            } else {
                let message =
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.";
                let (status, body) =
                    stripe_error(StatusCode::BAD_REQUEST, "idempotency_error", "idempotency_key_reused", None, message);
                (status, body, false)
            }
        } else {
            let (status, body) = answer(&mut stub, &path, &form);
            stub.answered.insert(key, (form, status, body.clone()));
            let slow = stub.slow > 0;
            stub.slow = stub.slow.saturating_sub(1);
            (status, body, slow)
        }
    };
    let stalled = {
        let mut stub = stub.lock().unwrap();
        let stalled = stub.stalled > 0;
        stub.stalled = stub.stalled.saturating_sub(1);
        stalled
    };
    if slow || stalled {
        // The work is done, but the answer comes too late for the client.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// `GET /v1/payment_intents/{id}` and `GET /v1/payment_intents/search?query=metadata['order_id']:'…'`.
async fn read(
    State(stub): State<Shared>,
    Path(rest): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {SECRET}"));
    assert!(authorized, "every request carries the secret key");
    assert!(headers.get("idempotency-key").is_none(), "a GET carries no idempotency key");
    let stub = stub.lock().unwrap();
    if rest == "payment_intents/search" {
        let wanted = query.get("query").expect("a search query");
        let order = wanted
            .strip_prefix("metadata['order_id']:'")
            .and_then(|q| q.strip_suffix('\''))
            .unwrap_or_else(|| panic!("a query Stripe's search syntax takes: {wanted}"));
        let data: Vec<Value> =
            stub.intents.values().filter(|intent| intent["metadata"]["order_id"] == order).cloned().collect();
        let page = json!({"object": "search_result", "data": data, "has_more": false, "next_page": null});
        return axum::Json(page).into_response();
    }
    if let Some(id) = rest.strip_prefix("refunds/") {
        return match stub.refunds.get(id) {
            Some(refund) => axum::Json(refund.clone()).into_response(),
            None => {
                let (status, body) = stripe_error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "resource_missing",
                    None,
                    "No such refund",
                );
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
            }
        };
    }
    let id = rest.trim_start_matches("payment_intents/");
    match stub.intents.get(id) {
        Some(intent) => axum::Json(intent.clone()).into_response(),
        None => {
            let (status, body) = stripe_error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "resource_missing",
                None,
                "No such payment_intent",
            );
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
    }
}

async fn stub() -> (Shared, StripeProvider) {
    let (shared, provider, _) = stub_at().await;
    (shared, provider)
}

async fn stub_at() -> (Shared, StripeProvider, url::Url) {
    platform::install_crypto_provider();
    let shared: Shared = Arc::default();
    let app = Router::new().route("/v1/{*rest}", post(handle).get(read)).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base: url::Url = base.parse().unwrap();
    let provider = StripeProvider::new(base.clone(), SecretString::from(SECRET), Duration::from_millis(500))
        .unwrap()
        .with_backoff(Duration::from_millis(10));
    (shared, provider, base)
}

fn usd(amount: i64) -> Money {
    Money::new(amount, "USD")
}

#[tokio::test]
async fn a_payment_intent_is_authorized_captured_and_refunded_with_the_documented_parameters() {
    let (stub, stripe) = stub().await;
    let authorized = stripe.authorize(&usd(2599), "pm_card_visa", "order-7", "pay_1-authorize").await.unwrap();
    assert_eq!(authorized.provider_ref, "pi_stub_1");
    stripe.capture("pi_stub_1", &usd(2599), "pay_1-capture").await.unwrap();
    let refund = stripe.refund("pi_stub_1", &usd(599), "re_abc").await.unwrap();
    assert!(refund.id.starts_with("re_stub_"));
    assert_eq!(refund.state, RefundState::Succeeded);

    let seen = stub.lock().unwrap().seen.clone();
    let paths: Vec<(&str, &str)> = seen.iter().map(|s| (s.path.as_str(), s.key.as_str())).collect();
    assert_eq!(
        paths,
        [
            ("/v1/payment_intents", "pay_1-authorize"),
            ("/v1/payment_intents/pi_stub_1/capture", "pay_1-capture"),
            ("/v1/refunds", "re_abc"),
        ]
    );
    let create = &seen[0].form;
    for (name, value) in [
        ("amount", "2599"),
        ("currency", "usd"),
        ("payment_method", "pm_card_visa"),
        ("payment_method_types[]", "card"),
        ("confirm", "true"),
        ("capture_method", "manual"),
        ("metadata[order_id]", "order-7"),
    ] {
        assert_eq!(create.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(seen[1].form.get("amount_to_capture").map(String::as_str), Some("2599"));
    assert_eq!(seen[2].form.get("payment_intent").map(String::as_str), Some("pi_stub_1"));
    assert_eq!(seen[2].form.get("amount").map(String::as_str), Some("599"));

    let over = stripe.refund("pi_stub_1", &usd(10_000), "re_def").await;
    assert!(matches!(over, Err(ProviderError::Invalid(_))), "{over:?}");
    let intent = stripe.authorize(&usd(100), "pm_card_visa", "order-8", "pay_2-authorize").await.unwrap();
    stripe.cancel(&intent.provider_ref, "pay_2-void").await.unwrap();
    assert!(matches!(
        stripe.capture(&intent.provider_ref, &usd(100), "pay_2-capture").await,
        Err(ProviderError::Invalid(_))
    ));
}

#[tokio::test]
async fn stripe_is_asked_what_it_did_when_an_answer_was_lost() {
    let (stub, stripe) = stub().await;
    // An authorization whose answer never came back: found by the order id in its metadata.
    stub.lock().unwrap().stalled = 3;
    let lost = stripe.authorize(&usd(700), "pm_card_visa", "ord_lost", "pay_5-authorize").await;
    assert!(matches!(lost, Err(ProviderError::Unavailable(_))), "{lost:?}");
    let found = stripe.find("ord_lost").await.unwrap();
    assert_eq!(found, Some(Intent { provider_ref: "pi_stub_1".into(), state: IntentState::Authorized }));
    assert_eq!(stripe.find("ord_never").await.unwrap(), None);

    // A capture made although its answer was lost: a cancel is refused, and retrieving tells why.
    stub.lock().unwrap().stalled = 3;
    let capture = stripe.capture("pi_stub_1", &usd(700), "pay_5-capture").await;
    assert!(matches!(capture, Err(ProviderError::Unavailable(_))), "{capture:?}");
    let cancel = stripe.cancel("pi_stub_1", "pay_5-void").await;
    assert!(matches!(cancel, Err(ProviderError::Invalid(_))), "{cancel:?}");
    assert_eq!(stripe.retrieve("pi_stub_1").await.unwrap(), IntentState::Captured);
    let other = stripe.authorize(&usd(100), "pm_card_visa", "ord_2", "pay_6-authorize").await.unwrap();
    stripe.cancel(&other.provider_ref, "pay_6-void").await.unwrap();
    assert_eq!(stripe.retrieve(&other.provider_ref).await.unwrap(), IntentState::Cancelled);
    assert!(matches!(stripe.retrieve("pi_nope").await, Err(ProviderError::Invalid(_))));
    assert!(matches!(stripe.find("ord' OR 'x").await, Err(ProviderError::Invalid(_))));
}

#[tokio::test]
async fn declines_carry_stripes_code_and_decline_code() {
    let (_, stripe) = stub().await;
    for (method, code, decline) in [
        ("pm_card_chargeDeclined", "card_declined", Some("generic_decline")),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", Some("insufficient_funds")),
        ("pm_card_missing", "resource_missing", None),
    ] {
        match stripe.authorize(&usd(100), method, "o", &format!("k-{method}")).await {
            Err(ProviderError::Refused(failure)) => {
                assert_eq!((failure.code.as_str(), failure.decline_code.as_deref()), (code, decline), "{method}");
            }
            other => panic!("{method}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_timeout_is_retried_with_the_same_key_and_makes_one_intent() {
    let (stub, stripe) = stub().await;
    stub.lock().unwrap().slow = 1;
    let authorized = stripe.authorize(&usd(500), "pm_card_visa", "o1", "pay_9-authorize").await.unwrap();
    let stub = stub.lock().unwrap();
    assert_eq!(stub.intents.len(), 1, "one intent, whatever the retries");
    assert_eq!(authorized.provider_ref, "pi_stub_1");
    let keys: Vec<&str> = stub.seen.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["pay_9-authorize", "pay_9-authorize"], "the retry sent the same key");
}

#[tokio::test]
async fn server_errors_are_retried_and_then_reported_unavailable() {
    let (stub, stripe) = stub().await;
    stub.lock().unwrap().failing = 2;
    stripe.authorize(&usd(500), "pm_card_visa", "o1", "k1").await.unwrap();
    stub.lock().unwrap().failing = 10;
    let outcome = stripe.authorize(&usd(500), "pm_card_visa", "o2", "k2").await;
    assert!(matches!(outcome, Err(ProviderError::Unavailable(_))), "{outcome:?}");
    let stub = stub.lock().unwrap();
    assert_eq!(stub.seen.iter().filter(|s| s.key == "k2").count(), 3, "three tries, one key");
}

#[tokio::test]
async fn a_bad_key_is_refused_and_the_secret_never_shows_in_debug_output() {
    let (_, stripe, base) = stub_at().await;
    assert!(!format!("{stripe:?}").contains(SECRET));
    let wrong = StripeProvider::new(base, SecretString::from("sk_test_wrong"), Duration::from_millis(500)).unwrap();
    let outcome = wrong.authorize(&usd(100), "pm_card_visa", "o", "k").await;
    // Nothing was done, and it is not the shopper's fault: the step is retried later.
    assert!(matches!(outcome, Err(ProviderError::Unavailable(ref e)) if e.to_string().contains("401")), "{outcome:?}");
}

#[tokio::test]
async fn a_refund_stripe_holds_pending_is_asked_about_until_it_ends() {
    let (stub, stripe) = stub().await;
    stripe.authorize(&usd(2599), "pm_card_visa", "order-9", "pay_9-authorize").await.unwrap();
    stripe.capture("pi_stub_1", &usd(2599), "pay_9-capture").await.unwrap();
    stub.lock().unwrap().pending_refunds = true;
    let refund = stripe.refund("pi_stub_1", &usd(2599), "re_pending").await.unwrap();
    assert_eq!(refund.state, RefundState::Pending);
    assert_eq!(stripe.refund_state(&refund.id).await.unwrap(), RefundState::Pending);
    stub.lock().unwrap().refunds.get_mut(&refund.id).unwrap()["status"] = json!("succeeded");
    assert_eq!(stripe.refund_state(&refund.id).await.unwrap(), RefundState::Succeeded);
    let failed = stripe.refund("pi_stub_1", &usd(1), "re_other").await.unwrap();
    let object = json!("failed");
    {
        let mut stub = stub.lock().unwrap();
        let stored = stub.refunds.get_mut(&failed.id).unwrap();
        stored["status"] = object;
        stored["failure_reason"] = json!("expired_or_canceled_card");
    }
    match stripe.refund_state(&failed.id).await.unwrap() {
        RefundState::Failed(why) => assert!(why.contains("expired_or_canceled_card"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(stripe.refund_state("re_x/../../v1/charges").await, Err(ProviderError::Invalid(_))));
    assert!(matches!(stripe.refund_state("re_missing").await, Err(ProviderError::Invalid(_))));
}
