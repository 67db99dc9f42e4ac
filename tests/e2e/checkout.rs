//! Checkout end to end over HTTP: cart → order → the saga across inventory and payment → shipped
//! with a label; and the failure paths: out of stock, declined card, cancellation, duplicate
//! submissions, shoppers racing for the last units, and other shoppers' orders.

use std::time::Duration;

use platform::Config;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use shop_tests::{TestApp, problem};

/// The platform on the DynamoDB stores (the moto server).
async fn on_dynamodb() -> Option<TestApp> {
    Some(TestApp::start_with(shop_tests::on_dynamodb("e2e-order")?).await)
}

fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"})
}

/// A product with SKU `sku` at 2500 and `on_hand` units.
async fn stocked(app: &TestApp, admin: &str, sku: &str, on_hand: i64) {
    priced(app, admin, sku, 2500, on_hand).await;
}

/// A product with SKU `sku` at `price` cents and `on_hand` units.
async fn priced(app: &TestApp, admin: &str, sku: &str, price: i64, on_hand: i64) {
    let body = json!({"name": format!("Lamp {sku}"), "brand": "Acme", "category_id": "cat-furniture",
        "price": {"amount": price, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(admin, sku, on_hand).await;
}

async fn checkout(app: &TestApp, token: &str, cart_id: &str, method: &str, key: &str) -> Response {
    app.request(Method::POST, "/v1/orders")
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"cart_id": cart_id, "shipping_address": address(), "payment_method": method}))
        .send()
        .await
        .unwrap()
}

async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json(&format!("/v1/orders/{id}"), token).await
}

async fn stock(app: &TestApp, admin: &str, sku: &str) -> (i64, i64) {
    let s: Value = app
        .request(Method::GET, &format!("/admin/v1/inventory/{sku}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (s["on_hand"].as_i64().unwrap(), s["reserved"].as_i64().unwrap())
}

async fn payments(app: &TestApp, admin: &str, order_id: &str) -> Vec<Value> {
    let list: Value = app
        .request(Method::GET, &format!("/admin/v1/payments?order_id={order_id}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"].as_array().unwrap().clone()
}

async fn email_of(app: &TestApp, token: &str) -> String {
    let me: Value =
        app.request(Method::GET, "/v1/users/me").bearer_auth(token).send().await.unwrap().json().await.unwrap();
    me["email"].as_str().unwrap().to_owned()
}

fn statuses(order: &Value) -> Vec<&str> {
    order["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect()
}

/// Why the order reached its status: the reason of the history entry that reached it (later
/// entries of the same status mark the saga's progress).
fn status_reason(order: &Value) -> Value {
    let history = order["history"].as_array().unwrap();
    history.iter().find(|h| h["status"] == order["status"]).map(|h| h["reason"].clone()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_shopper_checks_out_and_the_order_ships_with_stock_taken_and_payment_captured() {
    ships(TestApp::start().await).await;
}

#[tokio::test]
async fn a_shopper_checks_out_and_the_order_ships_with_stock_taken_and_payment_captured_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    ships(app).await;
}

async fn ships(app: TestApp) {
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "LAMP-1", 5).await;
    let cart = app.cart_with(&shopper, "LAMP-1", 2).await;
    let placed = checkout(&app, &shopper, &cart, "pm_card_visa", "k-1").await;
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!((placed["status"].as_str(), placed["total"]["amount"].as_i64()), (Some("pending"), Some(5000)));
    let id = placed["id"].as_str().unwrap();

    let done = app.settled(&shopper, id).await;
    assert_eq!(done["status"], "shipped", "{done}");
    // Confirmed, then each half marked as it answers (the second one ships it).
    assert_eq!(statuses(&done), ["pending", "reserved", "paid", "confirmed", "confirmed", "shipped"]);
    let marked = done["history"][4]["reason"].as_str();
    assert!(matches!(marked, Some("stock_committed" | "payment_captured")), "{done}");
    assert_eq!(done["items"][0]["unit_price"]["amount"], 2500);
    assert!(done["tracking_number"].as_str().is_some_and(|t| t.starts_with("SHP")));
    app.eventually("the stock is committed", || async { stock(&app, &admin, "LAMP-1").await == (3, 0) }).await;
    let paid = payments(&app, &admin, id).await;
    assert_eq!(
        (paid.len(), paid[0]["status"].as_str(), paid[0]["captured"].as_i64()),
        (1, Some("captured"), Some(5000))
    );
    let label_path = done["label_url"].as_str().unwrap();
    assert_eq!(label_path, format!("/v1/orders/{id}/label"));
    let label = app.request(Method::GET, label_path).bearer_auth(&shopper).send().await.unwrap();
    assert_eq!(label.status(), 200);
    assert_eq!(label.headers()["content-type"], "application/pdf");
    let pdf = label.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4") && String::from_utf8_lossy(&pdf).contains("Ada Lovelace"));
    // It carries addresses: nobody else gets it, nor anyone without a token.
    let stranger = app.customer_token().await;
    problem(app.request(Method::GET, label_path).bearer_auth(&stranger).send().await.unwrap(), 404).await;
    problem(app.request(Method::GET, label_path).send().await.unwrap(), 401).await;
    // The object store's public route serves images only: never the label behind the owner's back.
    let public = app.request(Method::GET, &format!("/files/labels/{id}.pdf")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let by_admin = app.request(Method::GET, label_path).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(by_admin.status(), 200);
    let cart: Value =
        app.request(Method::GET, "/v1/cart").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    assert!(cart["items"].as_array().unwrap().is_empty(), "the cart was emptied");
    let mine: Value =
        app.request(Method::GET, "/v1/orders").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine["items"][0]["id"], id);
    // The shopper was told, in text and HTML.
    let email = email_of(&app, &shopper).await;
    let about_the_order =
        || async { app.mails_to(&email).await.into_iter().filter(|m| m.contains(id)).collect::<Vec<_>>() };
    app.eventually("the confirmation and shipping emails are written", || async { about_the_order().await.len() == 2 })
        .await;
    let mails = about_the_order().await;
    assert!(mails.iter().any(|m| m.contains(&format!("Subject: Your order {id} is confirmed"))), "{mails:?}");
    let shipped = mails.iter().find(|m| m.contains("is on its way")).unwrap();
    assert!(shipped.contains(done["tracking_number"].as_str().unwrap()));
    assert!(shipped.contains("Content-Type: text/html") && shipped.contains("Content-Type: text/plain"));
    // Admins mark it delivered.
    let delivered =
        app.request(Method::POST, &format!("/admin/v1/orders/{id}/deliver")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(delivered.status(), 200);
    assert_eq!(order(&app, &shopper, id).await["status"], "delivered");
    problem(
        app.request(Method::POST, &format!("/v1/orders/{id}/cancel")).bearer_auth(&shopper).send().await.unwrap(),
        409,
    )
    .await;
}

#[tokio::test]
async fn one_orders_log_lines_are_followed_by_its_id_and_the_checkouts_trace_through_every_service() {
    use platform::testing::log_field;

    let logs = platform::testing::capture_logs("info");
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "LAMP-T", 5).await;
    let cart = app.cart_with(&shopper, "LAMP-T", 1).await;
    let request = platform::telemetry::trace::TraceContext::new_root();
    let placed = app
        .request(Method::POST, "/v1/orders")
        .bearer_auth(&shopper)
        .header("idempotency-key", "k-traced")
        .header("traceparent", request.traceparent())
        .json(&json!({"cart_id": cart, "shipping_address": address(), "payment_method": "pm_card_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap();
    assert_eq!(app.settled(&shopper, id).await["status"], "shipped");

    let text = |line: &Value, name: &str| log_field(line, name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let lines: Vec<Value> = logs.lines().into_iter().filter(|line| text(line, "order.id") == id).collect();
    let messages: Vec<String> = lines.iter().map(|line| text(line, "message")).collect();
    // The checkout over HTTP, each saga step, and each command the inventory and the payment took.
    for (message, at_least) in [
        ("order placed", 1),
        ("inventory command applied", 2),
        ("payment command applied", 2),
        ("saga step applied", 4),
    ] {
        let count = messages.iter().filter(|m| *m == message).count();
        assert!(count >= at_least, "{count} lines {message:?} of the order: {lines:#?}");
    }
    // All in the trace of the checkout's request, across the queues.
    for line in &lines {
        assert_eq!(text(line, "trace_id"), request.trace_id, "{line}");
    }
    let consumed: Vec<&Value> = lines.iter().filter(|line| !text(line, "event.id").is_empty()).collect();
    assert!(consumed.len() >= 8, "{consumed:#?}");
    // No line carries the shopper's email, password, token, address or payment method.
    let email = email_of(&app, &shopper).await;
    let written = serde_json::to_string(&logs.lines()).unwrap();
    for secret in
        [email.as_str(), "correct horse battery", shopper.as_str(), "Ada Lovelace", "St James", "pm_card_visa"]
    {
        assert!(!written.contains(secret), "{secret:?} was logged");
    }
    app.stop().await;
}

#[tokio::test]
async fn out_of_stock_rejects_and_a_declined_card_fails_with_nothing_kept() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "RARE-1", 1).await;
    let cart = app.cart_with(&shopper, "RARE-1", 2).await;
    let placed: Value = checkout(&app, &shopper, &cart, "pm_card_visa", "k-1").await.json().await.unwrap();
    let rejected = app.settled(&shopper, placed["id"].as_str().unwrap()).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(status_reason(&rejected), "out_of_stock");
    assert!(payments(&app, &admin, placed["id"].as_str().unwrap()).await.is_empty(), "nothing charged");
    let label = format!("/v1/orders/{}/label", placed["id"].as_str().unwrap());
    problem(app.request(Method::GET, &label).bearer_auth(&shopper).send().await.unwrap(), 404).await;

    stocked(&app, &admin, "LAMP-2", 5).await;
    let cart = app.cart_with(&shopper, "LAMP-2", 2).await;
    let placed: Value = checkout(&app, &shopper, &cart, "pm_card_chargeDeclined", "k-2").await.json().await.unwrap();
    let id = placed["id"].as_str().unwrap();
    let failed = app.settled(&shopper, id).await;
    assert_eq!(failed["status"], "payment_failed");
    assert_eq!(status_reason(&failed), "generic_decline");
    app.eventually("the stock comes back", || async { stock(&app, &admin, "LAMP-2").await == (5, 0) }).await;
    assert_eq!(payments(&app, &admin, id).await[0]["status"], "failed");
    let email = email_of(&app, &shopper).await;
    app.eventually("the shopper is told", || async {
        app.mails_to(&email).await.iter().any(|m| m.contains("did not go through") && m.contains("generic_decline"))
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_order_returns_its_stock_and_voids_its_payment() {
    // A slow payment provider keeps the order waiting long enough to cancel it.
    let app = TestApp::start_with(|config| {
        config.set("simulated_latency_ms", 800);
    })
    .await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "LAMP-3", 5).await;
    let cart = app.cart_with(&shopper, "LAMP-3", 3).await;
    let placed: Value = checkout(&app, &shopper, &cart, "pm_card_visa", "k-1").await.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    app.eventually("the stock is held", || async { order(&app, &shopper, &id).await["status"] == "reserved" }).await;
    let cancelled =
        app.request(Method::POST, &format!("/v1/orders/{id}/cancel")).bearer_auth(&shopper).send().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    app.eventually("the stock comes back", || async { stock(&app, &admin, "LAMP-3").await == (5, 0) }).await;
    app.eventually("the payment is voided", || async {
        payments(&app, &admin, &id).await.first().is_some_and(|p| p["status"] == "voided")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(order(&app, &shopper, &id).await["status"], "cancelled", "the late authorization moves nothing");
    let email = email_of(&app, &shopper).await;
    app.eventually("the shopper is told", || async {
        app.mails_to(&email).await.iter().any(|m| m.contains("is cancelled"))
    })
    .await;
    assert_eq!(payments(&app, &admin, &id).await[0]["captured"], 0);
}

#[tokio::test]
async fn the_same_checkout_posted_ten_times_makes_one_order_and_one_charge() {
    one_order_per_key(TestApp::start().await).await;
}

#[tokio::test]
async fn the_same_checkout_posted_ten_times_makes_one_order_and_one_charge_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    one_order_per_key(app).await;
}

async fn one_order_per_key(app: TestApp) {
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "LAMP-4", 10).await;
    let cart = app.cart_with(&shopper, "LAMP-4", 1).await;
    let posts: Vec<_> = (0..10).map(|_| checkout(&app, &shopper, &cart, "pm_card_visa", "same-key")).collect();
    let mut ids = std::collections::HashSet::new();
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), 202);
        ids.insert(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one order");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(app.settled(&shopper, &id).await["status"], "shipped");
    assert_eq!(payments(&app, &admin, &id).await.len(), 1, "one charge");
    let mine: Value =
        app.request(Method::GET, "/v1/orders").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    app.eventually("one unit left stock", || async { stock(&app, &admin, "LAMP-4").await == (9, 0) }).await;
    // The same key with another request: refused.
    let other = app
        .request(Method::POST, "/v1/orders")
        .bearer_auth(&shopper)
        .header("idempotency-key", "same-key")
        .json(&json!({"cart_id": cart, "shipping_address": address(), "payment_method": "pm_card_mastercard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(other, 422).await["type"], "/problems/idempotency-key-reused");
}

#[tokio::test]
async fn fifty_shoppers_racing_for_the_last_five_units_make_five_orders() {
    last_five_units(TestApp::start().await).await;
}

#[tokio::test]
async fn fifty_shoppers_racing_for_the_last_five_units_make_five_orders_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    last_five_units(app).await;
}

async fn last_five_units(app: TestApp) {
    let admin = app.admin_token().await;
    stocked(&app, &admin, "LAST-1", 5).await;
    let shoppers: Vec<String> = futures::future::join_all((0..50).map(|_| app.customer_token())).await;
    let mut placed = Vec::new();
    for shopper in &shoppers {
        let cart = app.cart_with(shopper, "LAST-1", 1).await;
        placed.push((shopper.clone(), cart));
    }
    let app = &app;
    let orders = futures::future::join_all(placed.iter().map(|(shopper, cart)| async move {
        let response = checkout(app, shopper, cart, "pm_card_visa", "race").await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        app.settled(shopper, &id).await["status"].as_str().unwrap().to_owned()
    }))
    .await;
    let shipped = orders.iter().filter(|s| *s == "shipped").count();
    let rejected = orders.iter().filter(|s| *s == "rejected").count();
    assert_eq!((shipped, rejected), (5, 45), "{orders:?}");
    app.eventually("the stock is gone", || async { stock(app, &admin, "LAST-1").await == (0, 0) }).await;
}

#[tokio::test]
async fn shoppers_reach_only_their_own_orders_and_bad_checkouts_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let ada = app.customer_token().await;
    let bob = app.customer_token().await;
    stocked(&app, &admin, "LAMP-5", 5).await;
    let cart = app.cart_with(&ada, "LAMP-5", 1).await;

    problem(
        app.request(Method::POST, "/v1/orders")
            .bearer_auth(&ada)
            .json(&json!({"cart_id": cart, "shipping_address": address(), "payment_method": "pm_card_visa"}))
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    let bad_address = json!({"cart_id": cart, "shipping_address": {"name": "", "line1": "x", "city": "y", "postal_code": "1", "country": "Britain"}, "payment_method": "pm_card_visa"});
    let refused = app
        .request(Method::POST, "/v1/orders")
        .bearer_auth(&ada)
        .header("idempotency-key", "a")
        .json(&bad_address)
        .send()
        .await
        .unwrap();
    let fields: Vec<String> = problem(refused, 422).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(fields.contains(&"name".to_owned()) && fields.contains(&"country".to_owned()), "{fields:?}");
    let card = problem(checkout(&app, &ada, &cart, "4242424242424242", "b").await, 422).await;
    assert_eq!(card["type"], "/problems/card-data");
    problem(checkout(&app, &ada, &cart, "card_visa", "c").await, 422).await;
    // Bob cannot check out Ada's cart, nor see her order.
    problem(checkout(&app, &bob, &cart, "pm_card_visa", "d").await, 404).await;
    let placed: Value = checkout(&app, &ada, &cart, "pm_card_visa", "e").await.json().await.unwrap();
    let id = placed["id"].as_str().unwrap();
    problem(app.request(Method::GET, &format!("/v1/orders/{id}")).bearer_auth(&bob).send().await.unwrap(), 404).await;
    problem(app.request(Method::POST, &format!("/v1/orders/{id}/cancel")).bearer_auth(&bob).send().await.unwrap(), 404)
        .await;
    problem(app.request(Method::GET, &format!("/v1/orders/{id}")).send().await.unwrap(), 401).await;
    assert_eq!(
        app.request(Method::GET, &format!("/v1/orders/{id}")).bearer_auth(&admin).send().await.unwrap().status(),
        200
    );
    let bobs: Value =
        app.request(Method::GET, "/v1/orders").bearer_auth(&bob).send().await.unwrap().json().await.unwrap();
    assert!(bobs["items"].as_array().unwrap().is_empty());
    // The emptied cart cannot be checked out again.
    problem(checkout(&app, &ada, &cart, "pm_card_visa", "f").await, 422).await;
    // Admins see the fulfillment queue; shoppers do not.
    app.settled(&ada, id).await;
    let queue: Value = app
        .request(Method::GET, "/admin/v1/orders?status=shipped")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(queue["items"].as_array().unwrap().iter().any(|o| o["id"] == id));
    problem(app.request(Method::GET, "/admin/v1/orders?status=shipped").bearer_auth(&ada).send().await.unwrap(), 403)
        .await;
    problem(app.request(Method::GET, "/admin/v1/orders?status=lost").bearer_auth(&admin).send().await.unwrap(), 422)
        .await;
}

#[tokio::test]
async fn a_step_that_never_answers_times_out_and_the_order_is_compensated() {
    // The payment provider answers after 3 s; the saga gives the payment step 2 × 300 ms.
    let app = TestApp::start_with(|config| {
        config.set("simulated_latency_ms", 3_000);
        config.set("saga_step_timeout_ms", 300);
        config.set("reservation_sweep_ms", 50);
    })
    .await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "SLOW-1", 5).await;
    let cart = app.cart_with(&shopper, "SLOW-1", 2).await;
    let placed: Value = checkout(&app, &shopper, &cart, "pm_card_visa", "k").await.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let done = app.settled(&shopper, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(status_reason(&done), "timed_out");
    app.eventually("the stock comes back", || async { stock(&app, &admin, "SLOW-1").await == (5, 0) }).await;
    // The authorization that arrives late is voided, never captured.
    for _ in 0..250 {
        if payments(&app, &admin, &id).await.first().is_some_and(|p| p["status"] == "voided") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payment = &payments(&app, &admin, &id).await[0];
    assert_eq!((payment["status"].as_str(), payment["captured"].as_i64()), (Some("voided"), Some(0)));
    assert_eq!(order(&app, &shopper, &id).await["status"], "cancelled");
}

#[tokio::test]
async fn orders_in_flight_when_the_platform_restarts_all_finish_once() {
    in_flight_through_a_restart(|_: &mut Config| {}).await;
}

#[tokio::test]
async fn orders_in_flight_when_the_platform_restarts_all_finish_once_on_dynamodb() {
    let Some(dynamodb) = shop_tests::on_dynamodb("e2e-order") else { return };
    in_flight_through_a_restart(dynamodb).await;
}

/// Orders at every step when the platform on `backend` stops and starts again.
async fn in_flight_through_a_restart(backend: impl Fn(&mut Config)) {
    let app = TestApp::start_with(|config| {
        backend(config);
        config.set("simulated_latency_ms", 150);
    })
    .await;
    let admin = app.admin_token().await;
    stocked(&app, &admin, "BUSY-1", 100).await;
    let mut placed = Vec::new();
    for i in 0..12 {
        let shopper = app.customer_token().await;
        let cart = app.cart_with(&shopper, "BUSY-1", 1).await;
        let method = if i % 4 == 3 { "pm_card_chargeDeclined" } else { "pm_card_visa" };
        let response: Value = checkout(&app, &shopper, &cart, method, "k").await.json().await.unwrap();
        placed.push((shopper, response["id"].as_str().unwrap().to_owned(), method));
    }
    // Stopped with orders at every step, then started again on the same data.
    let app = app.restart(&backend).await;
    let mut shipped = 0;
    for (shopper, id, method) in &placed {
        let done = app.settled(shopper, id).await;
        let expected = if *method == "pm_card_visa" { "shipped" } else { "payment_failed" };
        assert_eq!(done["status"], expected, "{done}");
        shipped += usize::from(expected == "shipped");
        let charges = payments(&app, &admin, id).await;
        assert_eq!(charges.len(), 1, "one payment per order");
        if expected == "shipped" {
            assert_eq!(charges[0]["captured"], 2500, "captured once");
        }
    }
    let shipped = shipped as i64;
    app.eventually("the stock adds up", || async { stock(&app, &admin, "BUSY-1").await == (100 - shipped, 0) }).await;
}

#[tokio::test]
async fn a_line_added_where_the_cached_copy_missed_it_is_checked_out_not_lost() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "LAMP-7", 5).await;
    stocked(&app, &admin, "LAMP-8", 5).await;
    let cart = app.cart_with(&shopper, "LAMP-7", 1).await;
    // Another writer (another node whose cache write was lost) adds a line in the store only: the
    // cached copy of the cart is now one version behind.
    let db = platform::sqlite::Db::open(app.infra().config.data_dir.join("order.db")).unwrap();
    let store = shop_order::store::sqlite::SqliteCartStore::new(db);
    let stored = shop_order::store::CartStore::set_quantity(&store, &cart, "LAMP-8", 2, 48).await.unwrap().unwrap();
    assert_eq!(stored.lines.len(), 2);

    // Checkout priced the copy, found the cart moved on, and placed what the store holds.
    let placed = checkout(&app, &shopper, &cart, "pm_card_visa", "k-stale").await;
    assert_eq!(placed.status(), 202);
    let id = placed.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = app.settled(&shopper, &id).await;
    let items: Vec<(&str, i64)> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap(), i["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(items, [("LAMP-7", 1), ("LAMP-8", 2)], "{done}");
    assert_eq!(done["total"]["amount"], 7500);
    let mine: Value =
        app.request(Method::GET, "/v1/cart").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    assert!(mine["items"].as_array().unwrap().is_empty(), "the emptied cart's copy was renewed: {mine}");
}

#[tokio::test]
async fn an_order_of_free_items_ships_without_a_payment() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    priced(&app, &admin, "SAMPLE-1", 0, 5).await;
    let cart = app.cart_with(&shopper, "SAMPLE-1", 2).await;
    let placed = checkout(&app, &shopper, &cart, "pm_card_visa", "k-free").await;
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["total"]["amount"], 0);
    let done = app.settled(&shopper, placed["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "shipped", "{done}");
    assert!(payments(&app, &admin, placed["id"].as_str().unwrap()).await.is_empty(), "nothing to authorize");
    app.eventually("the stock is taken", || async { stock(&app, &admin, "SAMPLE-1").await == (3, 0) }).await;
}

#[tokio::test]
async fn shop_reconcile_finds_what_disagrees_and_sends_what_sets_it_right() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    let mut ids = Vec::new();
    for (n, sku) in ["LAMP-R1", "LAMP-R2"].into_iter().enumerate() {
        stocked(&app, &admin, sku, 5).await;
        let cart = app.cart_with(&shopper, sku, 1).await;
        let placed: Value =
            checkout(&app, &shopper, &cart, "pm_card_visa", &format!("k-r{n}")).await.json().await.unwrap();
        let id = placed["id"].as_str().unwrap().to_owned();
        assert_eq!(app.settled(&shopper, &id).await["status"], "shipped");
        ids.push(id);
    }
    let (restored, released) = (ids[0].clone(), ids[1].clone());
    let clean = shop::reconcile::run(app.infra(), false).await.unwrap();
    assert_eq!(clean.findings, [], "{}", shop::reconcile::render(&clean));
    assert!(shop::reconcile::settles(&clean));

    // Behind the services' backs: the payment database is restored from a backup taken before the
    // first order's capture, and the second order's shipped units are put back by hand.
    let payment_db = platform::sqlite::Db::open(app.infra().config.data_dir.join("payment.db")).unwrap();
    let order_id = restored.clone();
    payment_db
        .transaction(move |tx| {
            tx.execute("UPDATE payments SET status = 'authorized', captured = 0 WHERE order_id = ?1", [&order_id])?;
            Ok(())
        })
        .await
        .unwrap();
    shop_inventory::open(app.infra()).await.unwrap().store.release(&released, "by hand", None).await.unwrap();

    let found = shop::reconcile::run(app.infra(), false).await.unwrap();
    let rules: Vec<(&str, &str, Option<&str>, bool)> =
        found.findings.iter().map(|f| (f.order_id.as_str(), f.rule, f.repair, f.repaired)).collect();
    assert_eq!(
        rules,
        [(restored.as_str(), "not_captured", Some("capture"), false), (released.as_str(), "no_stock", None, false)]
    );
    assert!(!shop::reconcile::settles(&found));
    let text = shop::reconcile::render(&found);
    assert!(text.contains("capture would set it right (--repair)") && text.contains("for people to look at"), "{text}");

    // With --repair the capture is sent; the payment service takes it (the provider, asked with
    // the same key, charges once) and the money agrees again.
    let repaired = shop::reconcile::run(app.infra(), true).await.unwrap();
    assert!(repaired.findings.iter().any(|f| f.rule == "not_captured" && f.repaired));
    app.eventually("the capture is recorded again", || async {
        payments(&app, &admin, &restored)
            .await
            .first()
            .is_some_and(|p| p["status"] == "captured" && p["captured"] == 2500)
    })
    .await;
    let after = shop::reconcile::run(app.infra(), false).await.unwrap();
    let left: Vec<&str> = after.findings.iter().map(|f| f.rule).collect();
    assert_eq!(left, ["no_stock"], "what no command can set right stays for people");
}

/// The token in the first email to `to` that holds `marker`, after `prefix` (waits for it).
async fn token_in_mail(app: &TestApp, to: &str, marker: &str, prefix: &str) -> String {
    let mut found = None;
    for _ in 0..500 {
        found = app.mails_to(to).await.into_iter().find(|m| m.contains(marker));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mail = found.unwrap_or_else(|| panic!("no email to {to} with {marker:?}"));
    let at = mail.find(prefix).unwrap_or_else(|| panic!("{prefix:?} in {mail}")) + prefix.len();
    mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect()
}

#[tokio::test]
async fn a_guest_checks_out_with_an_email_reads_the_order_by_its_token_and_finds_it_after_registering() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    stocked(&app, &admin, "GUEST-1", 5).await;
    let created = app.request(Method::POST, "/v1/carts").send().await.unwrap();
    assert_eq!(created.status(), 201);
    let cart = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let put = app.request(Method::PUT, &format!("/v1/carts/{cart}/items/GUEST-1")).json(&json!({"quantity": 2}));
    assert_eq!(put.send().await.unwrap().status(), 200);
    let email = format!("Guest-{}@Example.com", shop_tests::unique("g"));
    let place = |body: Value, key: &str| {
        app.request(Method::POST, "/v1/orders").header("idempotency-key", key).json(&body).send()
    };
    let base = json!({"cart_id": cart, "shipping_address": address(), "payment_method": "pm_card_visa"});

    // Without an account the email is required, and must be one.
    let missing = problem(place(base.clone(), "g-1").await.unwrap(), 422).await;
    assert_eq!(missing["errors"][0]["field"], "email", "{missing}");
    let mut bad = base.clone();
    bad["email"] = json!("not-an-email");
    assert_eq!(problem(place(bad, "g-2").await.unwrap(), 422).await["errors"][0]["field"], "email");
    // A shopper's own cart is not a guest's to check out.
    let shopper = app.customer_token().await;
    let theirs = app.cart_with(&shopper, "GUEST-1", 1).await;
    let mut stolen = base.clone();
    stolen["cart_id"] = json!(theirs);
    stolen["email"] = json!(email);
    problem(place(stolen, "g-3").await.unwrap(), 404).await;

    let mut body = base.clone();
    body["email"] = json!(email);
    let placed = place(body.clone(), "g-4").await.unwrap();
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    let (id, token) = (placed["id"].as_str().unwrap().to_owned(), placed["token"].as_str().unwrap().to_owned());
    assert!(token.len() >= 40, "a long random secret");
    let again: Value = place(body, "g-4").await.unwrap().json().await.unwrap();
    assert_eq!((again["id"].as_str(), again["token"].as_str()), (Some(id.as_str()), Some(token.as_str())));

    // The token reads the order, and nothing else does.
    let read = |query: String| app.request(Method::GET, &format!("/v1/orders/{id}{query}")).send();
    problem(read(String::new()).await.unwrap(), 401).await;
    problem(read("?token=wrong".into()).await.unwrap(), 404).await;
    problem(app.request(Method::GET, &format!("/v1/orders/{id}")).bearer_auth(&shopper).send().await.unwrap(), 404)
        .await;
    let mut shipped = Value::Null;
    for _ in 0..500 {
        let response = read(format!("?token={token}")).await.unwrap();
        assert_eq!(response.headers()["cache-control"], "private, no-store");
        shipped = response.json().await.unwrap();
        if shipped["status"] == "shipped" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shipped["status"], "shipped", "{shipped}");
    let lower = email.to_lowercase();
    assert_eq!(shipped["email"], lower.as_str());
    assert!(shipped.get("token").is_none(), "the order never shows its token");
    let other =
        app.request(Method::GET, &format!("/v1/orders/ord_{}?token={token}", "0".repeat(32))).send().await.unwrap();
    problem(other, 404).await;
    // The confirmation email goes to the guest, with the link that reads the order.
    let linked = token_in_mail(&app, &lower, "is confirmed", &format!("/orders/{id}?token=")).await;
    assert_eq!(linked, token);

    // Registering with that email, the orders join the account once the email is proven.
    let registered: Value = app
        .request(Method::POST, "/v1/auth/register")
        .json(&json!({"email": email, "password": "correct horse battery", "name": "Guest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = registered["access_token"].as_str().unwrap().to_owned();
    let history = || async { app.get_json("/v1/orders", &account).await["items"].as_array().unwrap().len() };
    assert_eq!(history().await, 0, "not before the email is proven");
    let proof = token_in_mail(&app, &lower, "Confirm your email", "/v1/auth/verify-email:\r\n\r\n").await;
    let verified = app.request(Method::POST, "/v1/auth/verify-email").json(&json!({"token": proof})).send();
    assert_eq!(verified.await.unwrap().status(), 204);
    app.eventually("the guest order is in the account's history", || async { history().await == 1 }).await;
    let mine = app.get_json(&format!("/v1/orders/{id}"), &account).await;
    assert_eq!((mine["status"].as_str(), mine["id"].as_str()), (Some("shipped"), Some(id.as_str())));
    app.stop().await;
}
