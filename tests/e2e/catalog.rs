//! The catalog's admin API and product reads, end to end.

use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::TestApp;

fn shoe() -> Value {
    json!({
        "name": "Trail Runner", "brand": "Acme", "category_id": "cat-shoes", "description": "Light and grippy.",
        "price": {"amount": 8999, "currency": "USD"}, "attributes": {"material": "mesh"},
        "variants": [{"sku": "TR-42", "attributes": {"size": 42}}, {"sku": "TR-43", "price": {"amount": 7999, "currency": "USD"}}]
    })
}

#[tokio::test]
async fn an_admin_creates_changes_and_deletes_a_product_and_shoppers_read_it_with_etags() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let created =
        app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&shoe()).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let product: Value = created.json().await.unwrap();
    let id = product["id"].as_str().unwrap().to_owned();
    assert_eq!(product["price"]["amount"], 7999, "priced at the lowest variant");

    let read = app.request(Method::GET, &format!("/v1/products/{id}")).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["cache-control"], "public, max-age=60");
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["variants"][0]["sku"], "TR-42");
    assert_eq!(body["in_stock"], false);
    let again =
        app.request(Method::GET, &format!("/v1/products/{id}")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);

    let patched = app
        .request(Method::PATCH, &format!("/admin/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Trail Runner 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let changed =
        app.request(Method::GET, &format!("/v1/products/{id}")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), 200, "a changed product has a new ETag");
    assert_eq!(changed.json::<Value>().await.unwrap()["name"], "Trail Runner 2");

    let mut whole = shoe();
    whole["variants"] = json!([{"sku": "TR-44"}]);
    let put = app
        .request(Method::PUT, &format!("/admin/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&whole)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(put.json::<Value>().await.unwrap()["variants"].as_array().unwrap().len(), 1);

    let deleted =
        app.request(Method::DELETE, &format!("/admin/v1/products/{id}")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.request(Method::GET, &format!("/v1/products/{id}")).send().await.unwrap().status(), 404);
    assert_eq!(
        app.request(Method::DELETE, &format!("/admin/v1/products/{id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_products_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let post = |body: Value| app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send();
    // SKUs of its own: the fleet's catalog is shared with other tests.
    let tag = shop_tests::unique("BAD");
    let shoe = || {
        let mut shoe = shoe();
        shoe["variants"] = json!([{"sku": format!("{tag}-42")}, {"sku": format!("{tag}-43")}]);
        shoe
    };

    let mut unknown_category = shoe();
    unknown_category["category_id"] = json!("cat-nope");
    let response = post(unknown_category).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["field"], "category_id");

    let mut negative = shoe();
    negative["price"]["amount"] = json!(-5);
    let response = post(negative).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    // A product whose fields are each within bounds but whose whole would not fit a store item
    // and an event: a 422 naming the limit.
    let mut too_large = shoe();
    too_large["variants"] = (0..48)
        .map(|i| {
            let attributes: serde_json::Map<String, Value> =
                (0..20).map(|a| (format!("a{a}"), json!("y".repeat(150)))).collect();
            json!({"sku": format!("{tag}-L{i}"), "attributes": attributes})
        })
        .collect();
    let response = post(too_large).await.unwrap();
    assert_eq!(response.status(), 422);
    let problem = response.json::<Value>().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "product", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("131072"), "{problem}");
    let mut odd = shoe();
    odd["name"] = json!("Runner\u{FFFF}");
    let response = post(odd).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["field"], "name");

    assert_eq!(post(shoe()).await.unwrap().status(), 201);
    let response = post(shoe()).await.unwrap();
    assert_eq!(response.status(), 409, "the SKUs belong to the first product");

    // Customers and anonymous callers cannot touch the catalog.
    let customer = app
        .request(Method::POST, "/v1/auth/register")
        .json(&json!({"email": format!("{}@example.com", shop_tests::unique("ada")), "password": "correct horse battery", "name": "Ada"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response =
        app.request(Method::POST, "/admin/v1/products").bearer_auth(&customer).json(&shoe()).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.request(Method::POST, "/admin/v1/products").json(&shoe()).send().await.unwrap().status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn every_catalog_change_is_written_to_the_outbox_and_relayed() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let created: Value = app
        .request(Method::POST, "/admin/v1/products")
        .bearer_auth(&admin)
        .json(&shoe())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    app.request(Method::DELETE, &format!("/admin/v1/products/{id}")).bearer_auth(&admin).send().await.unwrap();
    // Both events were committed with their changes and the relay has published them since.
    let db = platform::sqlite::Db::open(app.infra().config.data_dir.join("product.db")).unwrap();
    let published = || {
        platform::telemetry::metrics::render()
            .lines()
            .filter(|l| l.starts_with("outbox_published_total{kind=\"product."))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let mut state = (i64::MAX, 0.0);
    for _ in 0..100 {
        let waiting: i64 =
            db.read(|c| Ok(c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)).await.unwrap();
        state = (waiting, published());
        if state.0 == 0 && state.1 >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state.0, 0, "the outbox is drained");
    assert!(state.1 >= 2.0, "both events were published: {}", state.1);
    app.stop().await;
}
