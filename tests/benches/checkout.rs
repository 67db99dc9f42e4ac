//! Completed orders per second end to end in the embedded mode, and the time from
//! `POST /v1/orders` to `confirmed` (p50/p99) — the whole platform in this process, driven over
//! HTTP: shoppers fill their carts and check out, the saga runs across inventory and payment
//! (simulated provider) through the durable embedded queue, orders ship with their labels.
//!
//! Every order is priced whole: shipped by a zone's method to New York (sales tax) with a discount
//! code entered in the cart, a code with a limit, so each order also counts its use
//! (`PLAIN=1`: no zone and no code, the checkout as it was before the pricing engine).
//!
//! `cargo bench -p shop-tests --bench checkout` (`ORDERS`, `SHOPPERS` change the load; `RATE`
//! offers that many checkouts a second, spread evenly, instead of as many as the shoppers can
//! place — the latency at a given load rather than at saturation). The
//! latencies come from each order's own history (placed → confirmed, placed → shipped), so
//! measuring adds no polling load while the orders run.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::TestApp;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn at(order: &Value, status: &str) -> DateTime<Utc> {
    let entry = order["history"].as_array().unwrap().iter().find(|h| h["status"] == status).unwrap();
    entry["at"].as_str().unwrap().parse().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let orders = env("ORDERS", 3_000);
    let shoppers = env("SHOPPERS", 32);
    let rate = env("RATE", 0);
    let priced = env("PLAIN", 0) == 0;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let app = TestApp::start().await;
        let admin = app.admin_token().await;
        let skus: Vec<String> = (0..20).map(|i| format!("BENCH-{i}")).collect();
        let variants: Vec<Value> = skus.iter().map(|sku| json!({"sku": sku})).collect();
        let product = json!({"name": "Bench Lamp", "brand": "Acme", "category_id": "cat-furniture",
            "price": {"amount": 2500, "currency": "USD"}, "variants": variants});
        let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&product).send().await.unwrap();
        assert_eq!(created.status(), 201);
        for sku in &skus {
            app.request(Method::PUT, &format!("/admin/v1/inventory/{sku}"))
                .bearer_auth(&admin)
                .json(&json!({"on_hand": 1_000_000}))
                .send()
                .await
                .unwrap();
        }
        if priced {
            let zone = json!({"name": "United States", "currency": "USD", "countries": ["US"],
                "tax_rates": [{"country": "US", "region": "NY", "name": "Sales tax", "category": "standard", "rate_bp": 400}],
                "methods": [{"id": "standard", "name": "Standard", "pricing": {"type": "flat", "amount": 599},
                    "min_days": 3, "max_days": 5}]});
            let promotion = json!({"name": "Bench", "code": "BENCH10", "currency": "USD",
                "action": {"type": "order_percent", "percent_bp": 1000}, "limits": {"total": 1_000_000_000}});
            for (path, body) in [("/admin/v1/shipping-zones", zone), ("/admin/v1/promotions", promotion)] {
                let made = app.request(Method::POST, path).bearer_auth(&admin).json(&body).send().await.unwrap();
                assert_eq!(made.status(), 201, "{path}");
            }
        }
        let tokens: Vec<String> = futures::future::join_all((0..shoppers).map(|_| app.customer_token())).await;
        let address = json!({"name": "Ada", "line1": "1 Main St", "city": "New York", "region": "NY",
            "postal_code": "10001", "country": "US"});
        let offered = if rate == 0 { "as fast as they can".to_owned() } else { format!("at {rate} checkouts/s") };
        let pricing = if priced { "a code, shipping and sales tax on every order" } else { "no zone, no code" };
        println!("checkout benchmark: {orders} orders from {shoppers} shoppers, {offered}, {pricing} (embedded mode)");

        let next = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        let placed: Vec<Vec<(String, String)>> = futures::future::join_all(tokens.iter().enumerate().map(|(n, token)| {
            let (app, skus, address, next) = (&app, &skus, &address, &next);
            async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= orders {
                        return mine;
                    }
                    if rate > 0 {
                        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let sku = &skus[(i + n) % skus.len()];
                    let cart = app.cart_with(token, sku, 1).await;
                    if priced {
                        let code = app.request(Method::POST, "/v1/cart/codes").bearer_auth(token);
                        let entered = code.json(&json!({"code": "BENCH10"})).send().await.unwrap();
                        assert_eq!(entered.status(), 200);
                    }
                    let response = app
                        .request(Method::POST, "/v1/orders")
                        .bearer_auth(token)
                        .header("idempotency-key", format!("bench-{i}"))
                        .json(&json!({"cart_id": cart, "shipping_address": address, "payment_method": "pm_card_visa"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 202);
                    let placed: Value = response.json().await.unwrap();
                    if priced {
                        // 2,500 less 10 %, 5.99 shipping, 4 % tax on the goods.
                        assert_eq!(placed["total"]["amount"], 2_250 + 599 + 90, "{placed}");
                    }
                    mine.push((token.clone(), placed["id"].as_str().unwrap().to_owned()));
                }
            }
        }))
        .await;
        let placing = started.elapsed();
        let placed: Vec<(String, String)> = placed.into_iter().flatten().collect();

        // Wait for every order to ship, then read the history each one carries.
        let mut done = Vec::with_capacity(placed.len());
        for (token, id) in &placed {
            loop {
                let order = app.get_json(&format!("/v1/orders/{id}"), token).await;
                match order["status"].as_str() {
                    Some("shipped") => {
                        done.push(order);
                        break;
                    }
                    Some("pending" | "reserved" | "paid" | "confirmed") => tokio::time::sleep(Duration::from_millis(20)).await,
                    other => panic!("order {id} ended {other:?}"),
                }
            }
        }
        let first = done.iter().map(|o| at(o, "pending")).min().unwrap();
        let last = done.iter().map(|o| at(o, "shipped")).max().unwrap();
        let span = (last - first).num_milliseconds() as f64 / 1000.0;
        let mut confirm: Vec<f64> =
            done.iter().map(|o| (at(o, "confirmed") - at(o, "pending")).num_microseconds().unwrap() as f64 / 1000.0).collect();
        let mut ship: Vec<f64> =
            done.iter().map(|o| (at(o, "shipped") - at(o, "pending")).num_microseconds().unwrap() as f64 / 1000.0).collect();
        confirm.sort_by(f64::total_cmp);
        ship.sort_by(f64::total_cmp);
        println!(
            "{} orders placed in {:.2} s ({:.0} checkouts/s, each a cart update, a code and a POST /v1/orders)",
            done.len(),
            placing.as_secs_f64(),
            done.len() as f64 / placing.as_secs_f64()
        );
        println!(
            "completed (shipped) {:.0} orders/s: first placed to last shipped {span:.2} s",
            done.len() as f64 / span
        );
        println!(
            "POST /v1/orders to confirmed: p50 {:.1} ms, p99 {:.1} ms; to shipped: p50 {:.1} ms, p99 {:.1} ms",
            percentile(&confirm, 0.5),
            percentile(&confirm, 0.99),
            percentile(&ship, 0.5),
            percentile(&ship, 0.99)
        );
        app.stop().await;
    });
}
