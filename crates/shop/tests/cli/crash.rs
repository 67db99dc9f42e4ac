//! Real crashes: processes killed with SIGKILL (no graceful stop, nothing flushed) while checkouts
//! are in flight, then started again on the same data — `shop up` in the embedded mode, and in the
//! fleet the order, payment and inventory processes in turn. Afterwards every accepted order
//! reaches a terminal state within a minute, no order is captured twice, and stock is conserved on
//! every SKU (start + restocks − sold = on hand, nothing left reserved).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;
use tokio::task::JoinHandle;

use super::running::{Fleet, Shop, admin_token, free_port, json, on_data_dir, ready};

/// Units each SKU starts with.
const START: i64 = 60;
/// Units an admin adds to the first SKU while checkouts run.
const RESTOCK: i64 = 7;
const SHOPPERS: usize = 30;
/// How long an accepted order may take to settle after the restart.
const SETTLE: Duration = Duration::from_secs(60);
/// The simulated provider's latency slows the saga, so that orders are at every step when a
/// process is killed (scripts/fleet-e2e starts the fleet's payment service with the same).
const SLOW_SAGA: &[(&str, &str)] = &[("SHOP_SIMULATED_LATENCY_MS", "150")];

/// A shopper ready to check out: signed in, with a cart.
struct Shopper {
    token: String,
    cart: String,
    method: &'static str,
    key: String,
}

/// One crash: three SKUs of its own, stocked, and thirty shoppers with carts of them.
struct Round {
    client: Client,
    base: String,
    admin: String,
    skus: Vec<String>,
    shoppers: Vec<Arc<Shopper>>,
}

impl Round {
    /// Makes the SKUs (`CRASH-{tag}-A` …) with [`START`] units each and the shoppers.
    async fn prepare(client: &Client, base: &str, admin: &str, tag: &str) -> Self {
        let skus: Vec<String> = ["A", "B", "C"].iter().map(|s| format!("CRASH-{tag}-{s}")).collect();
        for sku in &skus {
            let product = json!({"name": format!("Lamp {sku}"), "brand": "Acme", "category_id": "cat-furniture",
                "price": {"amount": 2500, "currency": "USD"}, "variants": [{"sku": sku}]});
            let created = client.post(format!("{base}/admin/v1/products")).bearer_auth(admin).json(&product);
            json(created.send().await.unwrap(), "a product").await;
            let set = client.put(format!("{base}/admin/v1/inventory/{sku}")).bearer_auth(admin);
            json(set.json(&json!({"on_hand": START})).send().await.unwrap(), "stock").await;
        }
        let mut round =
            Self { client: client.clone(), base: base.to_owned(), admin: admin.to_owned(), skus, shoppers: Vec::new() };
        for i in 0..SHOPPERS {
            let shopper = round.shopper(tag, i).await;
            round.shoppers.push(Arc::new(shopper));
        }
        round
    }

    async fn shopper(&self, tag: &str, i: usize) -> Shopper {
        let (client, base) = (&self.client, &self.base);
        let email = format!("crash-{}-{i}@example.com", tag.to_lowercase());
        let body = json!({"email": email, "password": "correct horse battery", "name": "Shopper"});
        let registered =
            json(client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap(), "register").await;
        let token = registered["access_token"].as_str().unwrap().to_owned();
        let mut cart = String::new();
        // One or two SKUs, one or two units each.
        for (n, sku) in self.skus.iter().enumerate().filter(|(n, _)| (i + n) % 3 != 2) {
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
        Shopper { token, cart, method, key: format!("crash-checkout-{tag}-{i}") }
    }

    /// Every shopper checks out at once and an admin restocks the first SKU; returns once a third
    /// of the checkouts were accepted, with orders at every step of the saga and checkouts being
    /// answered.
    async fn check_out_all(&self) -> Checkouts {
        let accepted = Arc::new(AtomicUsize::new(0));
        let tasks = self
            .shoppers
            .iter()
            .map(|s| {
                let (client, base, s, accepted) = (self.client.clone(), self.base.clone(), s.clone(), accepted.clone());
                tokio::spawn(async move { check_out(&client, &base, &s, &accepted).await })
            })
            .collect();
        let restock = self.client.post(format!("{}/admin/v1/inventory/{}/adjust", self.base, self.skus[0]));
        let restock = restock.bearer_auth(&self.admin).json(&json!({"delta": RESTOCK, "reason": "delivery"}));
        json(restock.send().await.unwrap(), "restock").await;
        let started = Instant::now();
        while accepted.load(Ordering::SeqCst) < SHOPPERS / 3 {
            assert!(started.elapsed() < Duration::from_secs(60), "checkouts were not accepted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Checkouts { tasks, accepted }
    }

    /// Waits for every checkout to be answered and every order to settle, then checks that each
    /// was charged at most once and that stock adds up; a line saying how it went.
    async fn check(&self, checkouts: Checkouts, killed_after: usize) -> String {
        let (client, base, admin) = (&self.client, &self.base, &self.admin);
        let mut orders = Vec::new();
        for checkout in checkouts.tasks {
            orders.push(checkout.await.expect("a checkout task"));
        }
        assert_eq!(orders.len(), SHOPPERS);
        assert!(killed_after < SHOPPERS, "the kill came before every checkout was answered");

        // Every accepted order reaches a terminal state within a minute of the restart.
        let settle_from = Instant::now();
        let mut settled = Vec::new();
        for (shopper, id) in self.shoppers.iter().zip(&orders) {
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
            let list = client.get(format!("{base}/admin/v1/payments?order_id={id}")).bearer_auth(admin);
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

        // Stock is conserved: start + restocks − sold = on hand, nothing left reserved.
        for (n, sku) in self.skus.iter().enumerate() {
            let stock = json(
                client.get(format!("{base}/admin/v1/inventory/{sku}")).bearer_auth(admin).send().await.unwrap(),
                "stock",
            )
            .await;
            let restocked = if n == 0 { RESTOCK } else { 0 };
            let expected = START + restocked - sold.get(sku).copied().unwrap_or(0);
            assert_eq!(
                (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
                (Some(expected), Some(0)),
                "{sku}: {stock}"
            );
        }
        let mut outcomes: HashMap<&str, usize> = HashMap::new();
        for (_, order) in &settled {
            *outcomes.entry(order["status"].as_str().unwrap()).or_default() += 1;
        }
        format!("killed with {killed_after} of {SHOPPERS} checkouts answered; outcomes {outcomes:?}; sold {sold:?}")
    }
}

/// The checkouts of a round, running.
struct Checkouts {
    tasks: Vec<JoinHandle<String>>,
    accepted: Arc<AtomicUsize>,
}

impl Checkouts {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Checks `shopper` out, asking again with the same idempotency key while the platform is down
/// (as a client whose request was cut off does); the order's id.
async fn check_out(client: &Client, base: &str, shopper: &Shopper, accepted: &AtomicUsize) -> String {
    let started = Instant::now();
    loop {
        let body = json!({"cart_id": shopper.cart, "payment_method": shopper.method, "shipping_address":
            {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}});
        let sent = client
            .post(format!("{base}/v1/orders"))
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
    let admin = admin_token(&client, &base, on_data_dir(dir.path()), "admin@example.com").await;
    let round = Round::prepare(&client, &base, &admin, "UP").await;

    let checkouts = round.check_out_all().await;
    shop.kill();
    let killed_after = checkouts.accepted();
    let shop = Shop::start(dir.path(), port, SLOW_SAGA);
    ready(&client, &base).await;
    // The admin's token still verifies: the signing keys were on disk.
    let probe = client.get(format!("{base}/admin/v1/users")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(probe.status(), StatusCode::OK, "the admin's token survives the crash");
    println!("{}", round.check(checkouts, killed_after).await);
    drop(shop);
}

/// The fleet's processes that take part in a checkout's saga, killed in turn.
const FLEET_KILLED: [&str; 3] = ["order", "payment", "inventory"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills processes of a fleet of its own: scripts/fleet-e2e starts one and runs it"]
async fn fleet_orders_in_flight_when_order_payment_and_inventory_are_killed_in_turn_all_finish_once() {
    let fleet = Fleet::from_env();
    let client = Client::new();
    // Names of this run's own: the fleet may hold earlier runs' shoppers and SKUs.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let admin = admin_token(&client, &fleet.url, Fleet::shop(), &format!("crash-admin-{run}@example.com")).await;
    for service in FLEET_KILLED {
        let round = Round::prepare(&client, &fleet.url, &admin, &format!("{}-{run}", service.to_uppercase())).await;
        let checkouts = round.check_out_all().await;
        fleet.kill(service).await;
        let killed_after = checkouts.accepted();
        // Down for a moment while checkouts and saga messages keep coming.
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.restart(service).await;
        let how = round.check(checkouts, killed_after).await;
        println!("{service}: {how}");
    }
}
