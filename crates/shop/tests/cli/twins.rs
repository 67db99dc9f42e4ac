//! Two tasks of one service, as ECS runs them: a second order service on the fleet's stores, queues
//! and outbox (`scripts/fleet twin order`). Both relays drain the same outbox (its 16 partitions;
//! the fleet on moto writes one of them, `SHOP_OUTBOX_SHARDS=1`) under their leases while shoppers
//! check out; each event is published once in all (the relays' `outbox_published_total` by type,
//! summed over both processes, counts one `order.placed.v1` per order placed).

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::json;

use super::running::{Fleet, admin_token, json};

const SHOPPERS: usize = 24;

/// The `order.placed.v1` events the process at `base` has published so far.
async fn placed_published(client: &Client, base: &str) -> u64 {
    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("outbox_published_total{") && line.contains("kind=\"order.placed.v1\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The order service's own URL (not the balancer's), from `scripts/fleet status`.
fn order_url() -> String {
    let output = Fleet::script().arg("status").output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    let port = table
        .lines()
        .find(|line| line.starts_with("order "))
        .and_then(|line| line.split_whitespace().nth(2))
        .expect("the order service in scripts/fleet status");
    format!("http://127.0.0.1:{port}")
}

/// Stops the second order service however the test ends.
struct Twin;

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = Fleet::script().args(["untwin", "order"]).output();
    }
}

#[tokio::test]
#[ignore = "needs a fleet: scripts/fleet-e2e runs it"]
async fn fleet_two_order_services_publish_each_event_once() {
    let fleet = Fleet::from_env();
    let client = Client::new();
    let twin = Fleet::script().args(["twin", "order"]).output().unwrap();
    assert!(twin.status.success(), "scripts/fleet twin order: {}", String::from_utf8_lossy(&twin.stderr));
    let _twin = Twin;
    let stdout = String::from_utf8(twin.stdout).unwrap();
    let twin_url = stdout
        .lines()
        .find_map(|line| line.strip_prefix("export SHOP_FLEET_TWIN_URL="))
        .expect("the twin's URL")
        .to_owned();
    let first_url = order_url();

    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let admin = admin_token(&client, &fleet.url, Fleet::shop(), &format!("twin-admin-{run}@example.com")).await;
    let sku = format!("TWIN-{run}");
    let product = json!({"name": format!("Lamp {sku}"), "brand": "Acme", "category_id": "cat-furniture",
        "price": {"amount": 1900, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = client.post(format!("{}/admin/v1/products", fleet.url)).bearer_auth(&admin).json(&product);
    json(created.send().await.unwrap(), "a product").await;
    let stock = client.put(format!("{}/admin/v1/inventory/{sku}", fleet.url)).bearer_auth(&admin);
    json(stock.json(&json!({"on_hand": 1000})).send().await.unwrap(), "stock").await;

    let before = placed_published(&client, &first_url).await + placed_published(&client, &twin_url).await;
    let checkouts = (0..SHOPPERS).map(|i| {
        let (client, base, sku, run) = (client.clone(), fleet.url.clone(), sku.clone(), run.clone());
        tokio::spawn(async move {
            let email = format!("twin-{run}-{i}@example.com");
            let body = json!({"email": email, "password": "correct horse battery", "name": "Shopper"});
            let registered =
                json(client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap(), "register")
                    .await;
            let token = registered["access_token"].as_str().unwrap().to_owned();
            let line =
                client.put(format!("{base}/v1/cart/items/{sku}")).bearer_auth(&token).json(&json!({"quantity": 1}));
            let cart = json(line.send().await.unwrap(), "add to cart").await["id"].as_str().unwrap().to_owned();
            let order = json!({"cart_id": cart, "payment_method": "pm_card_visa", "shipping_address": {
                "name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}});
            let placed = client
                .post(format!("{base}/v1/orders"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("twin-{run}-{i}"))
                .json(&order)
                .send()
                .await
                .unwrap();
            let placed = json(placed, "checkout").await;
            (token, placed["id"].as_str().unwrap().to_owned())
        })
    });
    let mut orders = Vec::new();
    for checkout in checkouts {
        orders.push(checkout.await.unwrap());
    }

    // Every order settles (the saga's answers reach whichever order process takes them).
    let deadline = Instant::now() + Duration::from_secs(90);
    for (token, id) in &orders {
        loop {
            let order = json(
                client.get(format!("{}/v1/orders/{id}", fleet.url)).bearer_auth(token).send().await.unwrap(),
                "order",
            )
            .await;
            let status = order["status"].as_str().unwrap().to_owned();
            if matches!(status.as_str(), "confirmed" | "shipped" | "delivered") {
                break;
            }
            assert!(matches!(status.as_str(), "pending" | "reserved" | "paid"), "order {id}: {status}");
            assert!(Instant::now() < deadline, "order {id} still {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Published once each, in all: the relays' counts settle at exactly one per order.
    let mut published = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let first = placed_published(&client, &first_url).await;
        let second = placed_published(&client, &twin_url).await;
        published = first + second - before;
        eprintln!(
            "order.placed.v1 published: {first} by the first order service, {second} by the second (before: {before})"
        );
        if published >= SHOPPERS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(published, SHOPPERS as u64, "each order.placed.v1 published once across the two relays");
}
