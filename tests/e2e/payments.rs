//! Payments end to end: the saga's commands over the bus, Stripe webhooks (signed by Stripe's own
//! library, applied once), idempotent admin refunds, owners-only reads, and card data refused.

use platform::contracts::payment::{Authorize, Capture};
use platform::events::Event;
use platform::money::Money;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use shop_tests::{TestApp, problem};

const SECRET: &str = "whsec_e2e_payments";

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Signs as Stripe documents it: HMAC-SHA256 of "{timestamp}.{body}" keyed with the endpoint
/// secret (Stripe's own library signs too, in the test below).
pub fn sign(body: &str, secret: &str, timestamp: i64) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn start() -> TestApp {
    TestApp::start_with(|config| {
        config.set("stripe_webhook_secret", SECRET);
    })
    .await
}

async fn me(app: &TestApp, token: &str) -> String {
    let me: Value =
        app.request(Method::GET, "/v1/users/me").bearer_auth(token).send().await.unwrap().json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}

/// The order's payment as admins see it (`Null` until it exists).
async fn payment_of(app: &TestApp, admin: &str, order_id: &str) -> Value {
    let list: Value = app
        .request(Method::GET, &format!("/admin/v1/payments?order_id={order_id}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"][0].clone()
}

/// Authorizes (and, if asked, captures) 2500 USD for `order_id` through the saga's commands.
async fn pay(app: &TestApp, admin: &str, order_id: &str, customer: &str, method: &str, capture: bool) -> Value {
    let command = Authorize {
        order_id: order_id.into(),
        customer_id: customer.into(),
        amount: Money::new(2500, "USD"),
        payment_method: method.into(),
    };
    app.infra().bus.publish(&Event::new(Authorize::KIND, "order", command)).await.unwrap();
    app.eventually("the payment is decided", || async {
        matches!(payment_of(app, admin, order_id).await["status"].as_str(), Some("authorized" | "failed"))
    })
    .await;
    if capture {
        let command = Capture { order_id: order_id.into() };
        app.infra().bus.publish(&Event::new(Capture::KIND, "order", command)).await.unwrap();
        app.eventually("the payment is captured", || async {
            payment_of(app, admin, order_id).await["status"] == "captured"
        })
        .await;
    }
    payment_of(app, admin, order_id).await
}

async fn webhook(app: &TestApp, body: &Value) -> Response {
    let body = body.to_string();
    app.request(Method::POST, "/v1/payments/webhooks/stripe")
        .header("stripe-signature", sign(&body, SECRET, now()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_saga_authorizes_declines_and_captures_through_the_bus() {
    let app = start().await;
    let admin = app.admin_token().await;
    let paid = pay(&app, &admin, "order-ok", "user-1", "pm_card_visa", true).await;
    assert_eq!((paid["status"].as_str(), paid["captured"].as_i64()), (Some("captured"), Some(2500)));
    assert!(paid["provider_ref"].as_str().is_some_and(|r| r.starts_with("pi_")));
    let declined =
        pay(&app, &admin, "order-declined", "user-1", "pm_card_chargeDeclinedInsufficientFunds", false).await;
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["failure"]["decline_code"], "insufficient_funds");
    let detail: Value = app
        .request(Method::GET, &format!("/admin/v1/payments/{}", paid["id"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log: Vec<&str> = detail["log"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(log, ["created", "authorized", "captured"]);
}

#[tokio::test]
async fn admin_refunds_are_idempotent_and_never_exceed_the_capture() {
    let app = start().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let payment = pay(&app, &admin, "order-1", "user-1", "pm_card_visa", true).await;
    let path = format!("/admin/v1/payments/{}/refund", payment["id"].as_str().unwrap());
    let refund = |key: Option<&str>, body: Value, token: &str| {
        let mut request = app.request(Method::POST, &path).bearer_auth(token).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };

    problem(refund(None, json!({"amount": 1000}), &admin).await.unwrap(), 400).await;
    problem(refund(Some("k1"), json!({"amount": 1000}), &customer).await.unwrap(), 403).await;
    let first = refund(Some("k1"), json!({"amount": 1000, "reason": "damaged"}), &admin).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        (first["refund"]["amount"]["amount"].as_i64(), first["payment"]["status"].as_str()),
        (Some(1000), Some("partially_refunded"))
    );
    assert_eq!(first["refund"]["status"], "succeeded");
    // The same key and body: the same answer, and no second refund.
    let replay: Value =
        refund(Some("k1"), json!({"amount": 1000, "reason": "damaged"}), &admin).await.unwrap().json().await.unwrap();
    assert_eq!(replay, first);
    // The same key with another body: refused.
    let reused =
        problem(refund(Some("k1"), json!({"amount": 999, "reason": "damaged"}), &admin).await.unwrap(), 422).await;
    assert_eq!(reused["type"], "/problems/idempotency-key-reused");
    // More than is left: refused, and the refusal itself is kept for its key.
    let over = problem(refund(Some("k2"), json!({"amount": 1501}), &admin).await.unwrap(), 422).await;
    assert_eq!(over["errors"][0]["field"], "amount");
    problem(refund(Some("k2"), json!({"amount": 1501}), &admin).await.unwrap(), 422).await;
    problem(refund(Some("k3"), json!({"amount": 0}), &admin).await.unwrap(), 422).await;
    let rest: Value = refund(Some("k4"), json!({}), &admin).await.unwrap().json().await.unwrap();
    assert_eq!(
        (rest["refund"]["amount"]["amount"].as_i64(), rest["payment"]["status"].as_str()),
        (Some(1500), Some("refunded"))
    );
    problem(refund(Some("k5"), json!({"amount": 1}), &admin).await.unwrap(), 422).await;

    let detail: Value = app
        .request(Method::GET, &format!("/admin/v1/payments/{}", payment["id"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["refunded"], 2500);
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 2, "one refund per key, none for refused ones");

    // Nothing refundable in a payment never captured.
    let held = pay(&app, &admin, "order-2", "user-1", "pm_card_visa", false).await;
    let path = format!("/admin/v1/payments/{}/refund", held["id"].as_str().unwrap());
    let response = app
        .request(Method::POST, &path)
        .bearer_auth(&admin)
        .header("idempotency-key", "k9")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(response, 409).await;
    let missing = app
        .request(Method::POST, "/admin/v1/payments/pay_none/refund")
        .bearer_auth(&admin)
        .header("idempotency-key", "k10")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
}

#[tokio::test]
async fn webhooks_are_applied_to_payments_once() {
    let app = start().await;
    let admin = app.admin_token().await;
    let payment = pay(&app, &admin, "order-1", "user-1", "pm_card_visa", false).await;
    let intent = payment["provider_ref"].as_str().unwrap().to_owned();
    let succeeded = json!({"id": "evt_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "object": "payment_intent", "amount_received": 2500}}});
    for duplicate in [false, true] {
        let ack: Value = webhook(&app, &succeeded).await.json().await.unwrap();
        assert_eq!(ack["duplicate"], duplicate);
    }
    let captured = payment_of(&app, &admin, "order-1").await;
    assert_eq!((captured["status"].as_str(), captured["captured"].as_i64()), (Some("captured"), Some(2500)));

    let refunded = json!({"id": "evt_2", "type": "charge.refunded",
        "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": intent, "amount_refunded": 500}}});
    webhook(&app, &refunded).await;
    webhook(&app, &refunded).await;
    let after = payment_of(&app, &admin, "order-1").await;
    assert_eq!((after["status"].as_str(), after["refunded"].as_i64()), (Some("partially_refunded"), Some(500)));

    let disputed = json!({"id": "evt_3", "type": "charge.dispute.created",
        "data": {"object": {"id": "dp_1", "object": "dispute", "payment_intent": intent, "amount": 2000, "reason": "fraudulent"}}});
    webhook(&app, &disputed).await;
    webhook(&app, &disputed).await;
    let detail: Value = app
        .request(Method::GET, &format!("/admin/v1/payments/{}", payment["id"].as_str().unwrap()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log: Vec<&str> = detail["log"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        log,
        [
            "created",
            "authorized",
            "webhook:payment_intent.succeeded",
            "refund_requested",
            "refunded",
            "webhook:charge.dispute.created",
        ]
    );
    // An event about nothing we hold is acknowledged and changes nothing.
    let stranger = json!({"id": "evt_4", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_other"}}});
    assert_eq!(webhook(&app, &stranger).await.status(), 200);
    // A signature that does not match is a 400, and changes nothing.
    let body =
        json!({"id": "evt_5", "type": "payment_intent.canceled", "data": {"object": {"id": intent}}}).to_string();
    let forged = app
        .request(Method::POST, "/v1/payments/webhooks/stripe")
        .header("stripe-signature", sign(&body, "whsec_wrong", now()))
        .body(body)
        .send()
        .await
        .unwrap();
    problem(forged, 400).await;
    assert_eq!(payment_of(&app, &admin, "order-1").await["status"], "partially_refunded");
}

/// Stripe's own Python library signs the payloads; our verifier accepts exactly those.
#[tokio::test]
async fn signatures_made_by_stripes_own_library_are_accepted() {
    let Some(python) = platform::testing::server_env("SHOP_TEST_PYTHON") else { return };
    let app = start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/stripe-sign.py");
    let dir = tempfile::tempdir().unwrap();
    let sign_with_stripe = |body: &str, secret: &str, timestamp: Option<i64>| {
        let path = dir.path().join(format!("payload-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, body).unwrap();
        let mut command = std::process::Command::new(&python);
        command.arg(script).arg(&path).arg(secret);
        if let Some(timestamp) = timestamp {
            command.arg(timestamp.to_string());
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let post = |body: String, header: String| {
        app.request(Method::POST, "/v1/payments/webhooks/stripe").header("stripe-signature", header).body(body).send()
    };
    for (i, object) in
        [json!({}), json!({"description": "Überraschung — ünïcödé ✓", "n": [1, 2.5, null]})].into_iter().enumerate()
    {
        let body =
            json!({"id": format!("evt_py_{i}"), "type": "customer.created", "data": {"object": object}}).to_string();
        let header = sign_with_stripe(&body, SECRET, None);
        assert_eq!(post(body.clone(), header.clone()).await.unwrap().status(), 200, "{header}");
        // The same signature over another body, or from another secret, is refused.
        problem(post(format!("{body} "), header).await.unwrap(), 400).await;
        let other = sign_with_stripe(&body, "whsec_someone_else", None);
        problem(post(body.clone(), other).await.unwrap(), 400).await;
        // Outside the 5-minute tolerance: refused.
        let stale = sign_with_stripe(&body, SECRET, Some(now() - 600));
        problem(post(body, stale).await.unwrap(), 400).await;
    }
}

#[tokio::test]
async fn shoppers_read_only_their_own_payments() {
    let app = start().await;
    let admin = app.admin_token().await;
    let owner = app.customer_token().await;
    let stranger = app.customer_token().await;
    let owner_id = me(&app, &owner).await;
    let payment = pay(&app, &admin, "order-1", &owner_id, "pm_card_visa", false).await;
    let path = format!("/v1/payments/{}", payment["id"].as_str().unwrap());
    let mine: Value = app.request(Method::GET, &path).bearer_auth(&owner).send().await.unwrap().json().await.unwrap();
    assert_eq!((mine["order_id"].as_str(), mine["status"].as_str()), (Some("order-1"), Some("authorized")));
    assert_eq!(mine["amount"], json!({"amount": 2500, "currency": "USD"}));
    assert!(mine.get("payment_method").is_none() && mine.get("customer_id").is_none());
    problem(app.request(Method::GET, &path).bearer_auth(&stranger).send().await.unwrap(), 404).await;
    problem(app.request(Method::GET, &path).send().await.unwrap(), 401).await;
    assert_eq!(app.request(Method::GET, &path).bearer_auth(&admin).send().await.unwrap().status(), 200);
    problem(app.request(Method::GET, "/v1/payments/pay_none").bearer_auth(&owner).send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn requests_carrying_card_data_are_refused_and_change_nothing() {
    let app = start().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let payment = pay(&app, &admin, "order-1", "user-1", "pm_card_visa", true).await;
    let path = format!("/admin/v1/payments/{}/refund", payment["id"].as_str().unwrap());
    let card_number = app
        .request(Method::POST, &path)
        .bearer_auth(&admin)
        .header("idempotency-key", "k1")
        .json(&json!({"amount": 100, "reason": "card 4242 4242 4242 4242"}))
        .send()
        .await
        .unwrap();
    let refused = problem(card_number, 422).await;
    assert_eq!(refused["type"], "/problems/card-data");
    assert!(!refused["detail"].as_str().unwrap().contains("4242"), "the problem never echoes the number");
    assert_eq!(payment_of(&app, &admin, "order-1").await["refunded"], 0);
    let address = json!({"name": "A", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
        "country": "US", "card": {"cvc": "123", "exp_month": 12}});
    let response =
        app.request(Method::POST, "/v1/users/me/addresses").bearer_auth(&customer).json(&address).send().await.unwrap();
    problem(response, 422).await;
    let addresses: Value = app
        .request(Method::GET, "/v1/users/me/addresses")
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(addresses["items"].as_array().map(Vec::len).unwrap_or(0), 0);
    // A saga command carrying a card number instead of a token fails the payment without storing it.
    let failed = pay(&app, &admin, "order-2", "user-1", "4000056655665556", false).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failure"]["code"].as_str()),
        (Some("failed"), Some("payment_method_invalid"))
    );
    assert!(!failed.to_string().contains("4000056655665556"));
}
