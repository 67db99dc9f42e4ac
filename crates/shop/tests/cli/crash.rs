//! Real crashes: `shop up` killed with SIGKILL (no graceful stop, nothing flushed) while checkouts
//! are in flight, then started again on the same data. Afterwards every accepted order reaches a
//! terminal state within a minute, no order is captured twice, and stock is conserved on every SKU
//! (start + restocks − sold = on hand, nothing left reserved).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;
use tokio::sync::RwLock;

use super::running::{Shop, admin_token, free_port, json, ready};

/// The SKUs the shoppers buy, each starting with this many units.
const SKUS: [&str; 3] = ["CRASH-A", "CRASH-B", "CRASH-C"];
const START: i64 = 60;
/// Units an admin adds to the first SKU while checkouts run.
const RESTOCK: i64 = 7;
const SHOPPERS: usize = 30;
/// How long an accepted order may take to settle after the restart.
const SETTLE: Duration = Duration::from_secs(60);
/// The simulated provider's latency slows the saga, so that orders are at every step when the
/// process is killed.
const SLOW_SAGA: &[(&str, &str)] = &[("SHOP_SIMULATED_LATENCY_MS", "150")];

/// A shopper ready to check out: signed in, with a cart.
struct Shopper {
    token: String,
    cart: String,
    method: &'static str,
    key: String,
}

async fn shopper(client: &Client, base: &str, i: usize) -> Shopper {
    let email = format!("crash-{i}@example.com");
    let body = json!({"email": email, "password": "correct horse battery", "name": "Shopper"});
    let registered =
        json(client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap(), "register").await;
    let token = registered["access_token"].as_str().unwrap().to_owned();
    let mut cart = String::new();
    // One or two SKUs, one or two units each.
    for (n, sku) in SKUS.iter().enumerate().filter(|(n, _)| (i + n) % 3 != 2) {
        let quantity = 1 + ((i + n) % 2) as i64;
        let set = client
            .put(format!("{base}/v1/cart/items/{sku}"))
            .bearer_auth(&token)
            .json(&json!({"quantity": quantity}))
            .send()
            .await
            .unwrap();
        cart = json(set, "add to cart").await["id"].as_str().unwrap().to_owned();
    }
    let method = if i % 5 == 4 { "pm_card_chargeDeclined" } else { "pm_card_visa" };
    Shopper { token, cart, method, key: format!("crash-checkout-{i}") }
}

/// Checks `shopper` out, asking again with the same idempotency key while the platform is down
/// (as a client whose request was cut off does); the order's id.
async fn check_out(client: &Client, base: &RwLock<String>, shopper: &Shopper, accepted: &AtomicUsize) -> String {
    let started = Instant::now();
    loop {
        let url = format!("{}/v1/orders", base.read().await);
        let body = json!({"cart_id": shopper.cart, "payment_method": shopper.method, "shipping_address":
            {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}});
        let sent = client
            .post(url)
            .bearer_auth(&shopper.token)
            .header("idempotency-key", &shopper.key)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == StatusCode::ACCEPTED || response.status() == StatusCode::OK => {
                accepted.fetch_add(1, Ordering::SeqCst);
                return json(response, "checkout").await["id"].as_str().unwrap().to_owned();
            }
            // Down, or starting, or a retry while the first attempt is still being answered.
            Ok(response) if response.status().is_server_error() || response.status() == StatusCode::CONFLICT => {}
            Ok(response) => panic!("checkout refused: {} {}", response.status(), response.text().await.unwrap()),
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(120), "checkout never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_in_flight_when_shop_up_is_killed_all_finish_once_and_stock_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let shop = Shop::start(dir.path(), port, SLOW_SAGA);
    ready(&client, &base).await;
    let admin = admin_token(&client, &base, dir.path()).await;
    for sku in SKUS {
        let product = json!({"name": format!("Lamp {sku}"), "brand": "Acme", "category_id": "cat-furniture",
            "price": {"amount": 2500, "currency": "USD"}, "variants": [{"sku": sku}]});
        let created = client.post(format!("{base}/admin/v1/products")).bearer_auth(&admin).json(&product);
        json(created.send().await.unwrap(), "a product").await;
        let set = client.put(format!("{base}/admin/v1/inventory/{sku}")).bearer_auth(&admin);
        json(set.json(&json!({"on_hand": START})).send().await.unwrap(), "stock").await;
    }
    let mut shoppers = Vec::new();
    for i in 0..SHOPPERS {
        shoppers.push(Arc::new(shopper(&client, &base, i).await));
    }

    // Every shopper checks out at once; the process is killed once a third have been accepted,
    // with orders at every step of the saga and checkouts being answered.
    let shared_base = Arc::new(RwLock::new(base.clone()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let checkouts: Vec<_> = shoppers
        .iter()
        .map(|s| {
            let (client, base, s, accepted) = (client.clone(), shared_base.clone(), s.clone(), accepted.clone());
            tokio::spawn(async move { check_out(&client, &base, &s, &accepted).await })
        })
        .collect();
    let restock = client.post(format!("{base}/admin/v1/inventory/{}/adjust", SKUS[0])).bearer_auth(&admin);
    json(restock.json(&json!({"delta": RESTOCK, "reason": "delivery"})).send().await.unwrap(), "restock").await;
    let started = Instant::now();
    while accepted.load(Ordering::SeqCst) < SHOPPERS / 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "checkouts were not accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shop.kill();
    let killed_after = accepted.load(Ordering::SeqCst);

    let shop = Shop::start(dir.path(), port, SLOW_SAGA);
    ready(&client, &base).await;
    let mut orders = Vec::new();
    for checkout in checkouts {
        orders.push(checkout.await.expect("a checkout task"));
    }
    assert_eq!(orders.len(), SHOPPERS);
    assert!(killed_after < SHOPPERS, "the kill came before every checkout was answered");
    // The admin's token still verifies: the signing keys were on disk.
    let probe = client.get(format!("{base}/admin/v1/users")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK, "the admin's token survives the crash");

    // Every accepted order reaches a terminal state within a minute of the restart.
    let settle_from = Instant::now();
    let mut settled = Vec::new();
    for (shopper, id) in shoppers.iter().zip(&orders) {
        loop {
            let order = json(
                client.get(format!("{base}/v1/orders/{id}")).bearer_auth(&shopper.token).send().await.unwrap(),
                "an order",
            )
            .await;
            if matches!(order["status"].as_str(), Some("shipped" | "rejected" | "payment_failed" | "cancelled")) {
                settled.push((shopper.clone(), order));
                break;
            }
            assert!(settle_from.elapsed() < SETTLE, "not settled a minute after the restart: {order}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // No order is captured twice; a shipped order is captured once, in full; any other nothing.
    let mut sold: HashMap<String, i64> = HashMap::new();
    for (shopper, order) in &settled {
        let id = order["id"].as_str().unwrap();
        let list = client.get(format!("{base}/admin/v1/payments?order_id={id}")).bearer_auth(&admin);
        let payments = json(list.send().await.unwrap(), "payments").await;
        let payments = payments["items"].as_array().unwrap();
        let captured: Vec<i64> =
            payments.iter().map(|p| p["captured"].as_i64().unwrap_or(0)).filter(|c| *c > 0).collect();
        assert!(payments.len() <= 1, "one payment per order: {order} {payments:?}");
        if order["status"] == "shipped" {
            assert_eq!(captured, [order["total"]["amount"].as_i64().unwrap()], "captured once in full: {order}");
            assert_eq!(shopper.method, "pm_card_visa", "{order}");
            for item in order["items"].as_array().unwrap() {
                *sold.entry(item["sku"].as_str().unwrap().to_owned()).or_default() +=
                    item["quantity"].as_i64().unwrap();
            }
        } else {
            assert!(captured.is_empty(), "nothing captured for an order that did not ship: {order} {payments:?}");
        }
    }
    assert!(!sold.is_empty(), "some orders shipped");
    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    for (_, order) in &settled {
        *outcomes.entry(order["status"].as_str().unwrap()).or_default() += 1;
    }
    println!("killed with {killed_after} of {SHOPPERS} checkouts answered; outcomes {outcomes:?}; sold {sold:?}");

    // Stock is conserved: start + restocks − sold = on hand, nothing left reserved.
    for sku in SKUS {
        let stock = json(
            client.get(format!("{base}/admin/v1/inventory/{sku}")).bearer_auth(&admin).send().await.unwrap(),
            "stock",
        )
        .await;
        let restocked = if sku == SKUS[0] { RESTOCK } else { 0 };
        let expected = START + restocked - sold.get(sku).copied().unwrap_or(0);
        assert_eq!(
            (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
            (Some(expected), Some(0)),
            "{sku}: {stock}"
        );
    }
    drop(shop);
}
