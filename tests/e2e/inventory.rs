//! The inventory end to end: the admin stock API, the public availability read, the saga's
//! commands over the bus, reservation expiry, and the catalog following stock.

use platform::contracts::inventory::{Commit, Line, Release, Reserve};
use platform::events::Event;
use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::{TestApp, problem};

async fn available(app: &TestApp, sku: &str) -> i64 {
    let body: Value =
        app.request(Method::GET, &format!("/v1/inventory/{sku}")).send().await.unwrap().json().await.unwrap();
    body["available"].as_i64().unwrap_or(-1)
}

async fn admin_stock(app: &TestApp, admin: &str, sku: &str) -> Value {
    app.request(Method::GET, &format!("/admin/v1/inventory/{sku}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_set_adjust_and_audit_stock_and_shoppers_see_what_is_available() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let set = app
        .request(Method::PUT, "/admin/v1/inventory/MUG-1")
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 10, "low_stock_threshold": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let body: Value = set.json().await.unwrap();
    assert_eq!(body["sku"], "MUG-1");
    assert_eq!((body["on_hand"].as_i64(), body["available"].as_i64()), (Some(10), Some(10)));
    assert_eq!((body["low_stock_threshold"].as_i64(), body["low_stock"].as_bool()), (Some(3), Some(false)));
    assert_eq!(available(&app, "MUG-1").await, 10);

    let adjusted = app
        .request(Method::POST, "/admin/v1/inventory/MUG-1/adjust")
        .bearer_auth(&admin)
        .json(&json!({"delta": -8, "reason": "water damage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(adjusted.status(), 200);
    let body: Value = adjusted.json().await.unwrap();
    assert_eq!((body["on_hand"].as_i64(), body["low_stock"].as_bool()), (Some(2), Some(true)));
    assert_eq!(available(&app, "MUG-1").await, 2);

    let ledger: Value = app
        .request(Method::GET, "/admin/v1/inventory/MUG-1/ledger")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = ledger["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0]["kind"].as_str(), entries[0]["delta"].as_i64()), (Some("adjust"), Some(-8)));
    assert_eq!(entries[0]["reason"], "water damage");
    assert_eq!((entries[1]["kind"].as_str(), entries[1]["delta"].as_i64()), (Some("set"), Some(10)));
    assert!(entries[0]["reference"].as_str().is_some_and(|r| !r.is_empty()), "the admin is on record");
    assert_eq!(ledger["next_cursor"], Value::Null);
    // The ledger pages, oldest last.
    let first: Value = app
        .request(Method::GET, "/admin/v1/inventory/MUG-1/ledger?limit=1")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .request(Method::GET, &format!("/admin/v1/inventory/MUG-1/ledger?limit=1&cursor={cursor}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["kind"], "set");

    app.request(Method::PUT, "/admin/v1/inventory/PLATE-1")
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 50}))
        .send()
        .await
        .unwrap();
    let low: Value = app
        .request(Method::GET, "/admin/v1/inventory?low_stock=true")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let skus: Vec<&str> = low["items"].as_array().unwrap().iter().map(|s| s["sku"].as_str().unwrap()).collect();
    assert!(skus.contains(&"MUG-1") && !skus.contains(&"PLATE-1"), "{skus:?}");
    let all: Value =
        app.request(Method::GET, "/admin/v1/inventory").bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

/// The platform on the DynamoDB stores (the moto server), sweeping reservations every 200 ms.
async fn on_dynamodb() -> Option<TestApp> {
    let dynamodb = shop_tests::on_dynamodb("e2e-inv")?;
    Some(
        TestApp::start_with(|config| {
            dynamodb(config);
            config.set("reservation_sweep_ms", 200);
        })
        .await,
    )
}

#[tokio::test]
async fn the_catalog_follows_stock_set_by_admins() {
    catalog_follows_stock(TestApp::start().await).await;
}

#[tokio::test]
async fn the_catalog_follows_stock_set_by_admins_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    catalog_follows_stock(app).await;
}

async fn catalog_follows_stock(app: TestApp) {
    let admin = app.admin_token().await;
    let product = json!({
        "name": "Enamel Mug", "brand": "Acme", "category_id": "cat-kitchen",
        "price": {"amount": 1500, "currency": "USD"}, "variants": [{"sku": "ENAMEL-1"}]
    });
    let created =
        app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&product).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let in_stock = |app: &TestApp| {
        let path = format!("/v1/products/{id}");
        let request = app.request(Method::GET, &path);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["in_stock"].as_bool() }
    };
    assert_eq!(in_stock(&app).await, Some(false));
    app.request(Method::PUT, "/admin/v1/inventory/ENAMEL-1")
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 3}))
        .send()
        .await
        .unwrap();
    app.eventually("the product is in stock", || async { in_stock(&app).await == Some(true) }).await;
    app.request(Method::POST, "/admin/v1/inventory/ENAMEL-1/adjust")
        .bearer_auth(&admin)
        .json(&json!({"delta": -3, "reason": "sold at the fair"}))
        .send()
        .await
        .unwrap();
    app.eventually("the product is out of stock", || async { in_stock(&app).await == Some(false) }).await;
}

#[tokio::test]
async fn admin_stock_routes_refuse_customers_anonymous_callers_and_bad_input() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    app.request(Method::PUT, "/admin/v1/inventory/CUP-1")
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 5}))
        .send()
        .await
        .unwrap();
    let routes = [
        (Method::GET, "/admin/v1/inventory", None),
        (Method::GET, "/admin/v1/inventory/CUP-1", None),
        (Method::PUT, "/admin/v1/inventory/CUP-1", Some(json!({"on_hand": 0}))),
        (Method::POST, "/admin/v1/inventory/CUP-1/adjust", Some(json!({"delta": -5, "reason": "gone"}))),
        (Method::GET, "/admin/v1/inventory/CUP-1/ledger", None),
        (Method::GET, "/admin/v1/reservations/o1", None),
    ];
    for (method, path, body) in &routes {
        let mut request = app.request(method.clone(), path).bearer_auth(&customer);
        if let Some(body) = body {
            request = request.json(body);
        }
        problem(request.send().await.unwrap(), 403).await;
        let mut request = app.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        problem(request.send().await.unwrap(), 401).await;
    }

    let put = |sku: &str, body: Value| {
        app.request(Method::PUT, &format!("/admin/v1/inventory/{sku}")).bearer_auth(&admin).json(&body).send()
    };
    let negative = problem(put("CUP-1", json!({"on_hand": -1})).await.unwrap(), 422).await;
    assert_eq!(negative["errors"][0]["field"], "on_hand");
    let threshold = problem(put("CUP-1", json!({"on_hand": 1, "low_stock_threshold": -2})).await.unwrap(), 422).await;
    assert_eq!(threshold["errors"][0]["field"], "low_stock_threshold");
    problem(put("CUP-1", json!({"on_hand": "ten"})).await.unwrap(), 422).await;
    problem(put("CUP-1", json!({"on_hand": 1, "colour": "red"})).await.unwrap(), 422).await;
    problem(put("CUP-1", json!({"on_hand": 2_000_000_000})).await.unwrap(), 422).await;
    let bad_sku = problem(put("not%20a%20sku", json!({"on_hand": 1})).await.unwrap(), 422).await;
    assert_eq!(bad_sku["errors"][0]["field"], "sku");
    let malformed = app
        .request(Method::PUT, "/admin/v1/inventory/CUP-1")
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"on_hand\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;

    let adjust = |sku: &str, body: Value| {
        app.request(Method::POST, &format!("/admin/v1/inventory/{sku}/adjust")).bearer_auth(&admin).json(&body).send()
    };
    problem(adjust("NO-SUCH", json!({"delta": 1, "reason": "found"})).await.unwrap(), 404).await;
    problem(adjust("CUP-1", json!({"delta": 0, "reason": "nothing"})).await.unwrap(), 422).await;
    problem(adjust("CUP-1", json!({"delta": 1, "reason": "  "})).await.unwrap(), 422).await;
    problem(adjust("CUP-1", json!({"delta": 1})).await.unwrap(), 422).await;
    problem(adjust("CUP-1", json!({"delta": i64::MIN, "reason": "oops"})).await.unwrap(), 422).await;
    let too_many =
        problem(adjust("CUP-1", json!({"delta": 999_999_999, "reason": "a miscount"})).await.unwrap(), 422).await;
    assert_eq!(too_many["errors"][0]["field"], "delta");
    problem(adjust("not%20a%20sku", json!({"delta": 1, "reason": "found"})).await.unwrap(), 404).await;
    let below = problem(adjust("CUP-1", json!({"delta": -6, "reason": "lost"})).await.unwrap(), 409).await;
    assert!(below["detail"].as_str().unwrap().contains("CUP-1"), "{below}");

    for path in
        ["/admin/v1/inventory?limit=0", "/admin/v1/inventory?cursor=a%20b", "/admin/v1/inventory/CUP-1/ledger?cursor=x"]
    {
        problem(app.request(Method::GET, path).bearer_auth(&admin).send().await.unwrap(), 422).await;
    }
    problem(
        app.request(Method::GET, "/admin/v1/inventory?low_stock=maybe").bearer_auth(&admin).send().await.unwrap(),
        400,
    )
    .await;
    problem(app.request(Method::GET, "/admin/v1/inventory/NO-SUCH").bearer_auth(&admin).send().await.unwrap(), 404)
        .await;
    problem(app.request(Method::GET, "/admin/v1/reservations/o-none").bearer_auth(&admin).send().await.unwrap(), 404)
        .await;
    let long = format!("/admin/v1/reservations/{}", "o".repeat(3000));
    problem(app.request(Method::GET, &long).bearer_auth(&admin).send().await.unwrap(), 404).await;

    // Nothing refused changed anything.
    let stock = admin_stock(&app, &admin, "CUP-1").await;
    assert_eq!((stock["on_hand"].as_i64(), stock["low_stock_threshold"].as_i64()), (Some(5), Some(0)));
    let ledger: Value = app
        .request(Method::GET, "/admin/v1/inventory/CUP-1/ledger")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["items"].as_array().unwrap().len(), 1);
    problem(app.request(Method::GET, "/v1/inventory/NO-SUCH").send().await.unwrap(), 404).await;
}

#[tokio::test]
async fn the_saga_reserves_commits_and_releases_stock_through_the_bus_and_holds_expire() {
    saga_commands(
        TestApp::start_with(|config| {
            config.set("reservation_sweep_ms", 50);
        })
        .await,
    )
    .await;
}

#[tokio::test]
async fn the_saga_reserves_commits_and_releases_stock_through_the_bus_and_holds_expire_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    saga_commands(app).await;
}

async fn saga_commands(app: TestApp) {
    let admin = app.admin_token().await;
    app.request(Method::PUT, "/admin/v1/inventory/LAMP-1")
        .bearer_auth(&admin)
        .json(&json!({"on_hand": 4}))
        .send()
        .await
        .unwrap();
    let bus = app.infra().bus.clone();
    let reserve = |order_id: &str, quantity: i64, ttl_seconds: Option<u64>| {
        let lines = vec![Line { sku: "LAMP-1".into(), quantity }];
        Event::new(Reserve::KIND, "order", Reserve { order_id: order_id.into(), lines, ttl_seconds })
    };
    let status = |order_id: &str| {
        let request = app.request(Method::GET, &format!("/admin/v1/reservations/{order_id}")).bearer_auth(&admin);
        async move {
            let response = request.send().await.unwrap();
            if response.status() == 404 {
                return String::new();
            }
            response.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_owned()
        }
    };

    let command = reserve("order-1", 3, None);
    bus.publish(&command).await.unwrap();
    bus.publish(&command).await.unwrap();
    app.eventually("order-1 is held", || async { status("order-1").await == "held" }).await;
    assert_eq!(available(&app, "LAMP-1").await, 1);
    bus.publish(&reserve("order-2", 2, None)).await.unwrap();
    app.eventually("order-2 is rejected", || async { status("order-2").await == "rejected" }).await;
    let rejected: Value = app
        .request(Method::GET, "/admin/v1/reservations/order-2")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rejected["short"], json!([{"sku": "LAMP-1", "requested": 2, "available": 1}]));

    bus.publish(&Event::new(Commit::KIND, "order", Commit { order_id: "order-1".into() })).await.unwrap();
    app.eventually("order-1 is committed", || async { status("order-1").await == "committed" }).await;
    let stock = admin_stock(&app, &admin, "LAMP-1").await;
    assert_eq!((stock["on_hand"].as_i64(), stock["reserved"].as_i64()), (Some(1), Some(0)), "held once, sold once");

    bus.publish(&Event::new(
        Release::KIND,
        "order",
        Release { order_id: "order-1".into(), reason: "cancelled".into() },
    ))
    .await
    .unwrap();
    app.eventually("order-1 is returned", || async { status("order-1").await == "returned" }).await;
    assert_eq!(available(&app, "LAMP-1").await, 4);

    bus.publish(&reserve("order-3", 4, Some(1))).await.unwrap();
    app.eventually("order-3 is held", || async { status("order-3").await == "held" }).await;
    assert_eq!(available(&app, "LAMP-1").await, 0);
    app.eventually("order-3's hold expires", || async { status("order-3").await == "released" }).await;
    assert_eq!(available(&app, "LAMP-1").await, 4, "the expired hold came back once");
    let expired: Value = app
        .request(Method::GET, "/admin/v1/reservations/order-3")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(expired["release_reason"], "expired");
}

#[tokio::test]
async fn shoppers_read_the_availability_of_several_skus_at_once() {
    let app = TestApp::start().await;
    many_at_once(app).await;
}

#[tokio::test]
async fn shoppers_read_the_availability_of_several_skus_at_once_on_dynamodb() {
    let Some(app) = on_dynamodb().await else { return };
    many_at_once(app).await;
}

async fn many_at_once(app: TestApp) {
    let admin = app.admin_token().await;
    let tag = shop_tests::unique("MANY").to_uppercase();
    let (a, b, unknown) = (format!("{tag}-A"), format!("{tag}-B"), format!("{tag}-NONE"));
    app.set_stock(&admin, &a, 7).await;
    app.set_stock(&admin, &b, 0).await;
    let path = format!("/v1/inventory?skus={b},{unknown},{a}");
    let answer = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"items": [{"sku": b, "available": 0}, {"sku": a, "available": 7}]}),
        "known SKUs in the order asked"
    );
    // No SKU, too many, or something that cannot be a SKU: a 422 naming the parameter.
    let many = (0..101).map(|n| format!("S{n}")).collect::<Vec<_>>().join(",");
    for bad in [
        "/v1/inventory?skus=",
        "/v1/inventory?skus=,,",
        &format!("/v1/inventory?skus={many}"),
        "/v1/inventory?skus=A%20B",
    ] {
        let refused = problem(app.request(Method::GET, bad).send().await.unwrap(), 422).await;
        assert_eq!(refused["errors"][0]["field"], "skus", "{bad}: {refused}");
    }
    let missing = app.request(Method::GET, "/v1/inventory").send().await.unwrap();
    assert_eq!(missing.status(), 400, "the parameter is required");
    app.stop().await;
}
