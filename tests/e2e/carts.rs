//! Carts end to end: guest carts and the signed-in shopper's cart, priced from the catalog at read
//! time, lines the catalog no longer sells reported, and the merge of a guest cart at login.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use shop_tests::{TestApp, problem};

/// A product with SKUs `{prefix}-A` (1999) and `{prefix}-B` (500); its id.
async fn product(app: &TestApp, admin: &str, prefix: &str) -> String {
    let body = json!({
        "name": format!("Mug {prefix}"), "brand": "Acme", "category_id": "cat-kitchen",
        "price": {"amount": 1999, "currency": "USD"},
        "variants": [{"sku": format!("{prefix}-A")}, {"sku": format!("{prefix}-B"), "price": {"amount": 500, "currency": "USD"}}]
    });
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn put(app: &TestApp, path: &str, token: Option<&str>, quantity: Value) -> Response {
    let mut request = app.request(Method::PUT, path).json(&json!({ "quantity": quantity }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["sku"].as_str().unwrap().to_owned(), i["quantity"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_guest_cart_is_priced_from_the_catalog_at_read_time() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let id = product(&app, &admin, "MUG").await;
    let cart: Value = app.request(Method::POST, "/v1/carts").send().await.unwrap().json().await.unwrap();
    let cart_id = cart["id"].as_str().unwrap().to_owned();
    assert_eq!((cart["items"].as_array().unwrap().len(), cart["subtotal"]["amount"].as_i64()), (0, Some(0)));

    let path = |sku: &str| format!("/v1/carts/{cart_id}/items/{sku}");
    put(&app, &path("MUG-A"), None, json!(2)).await;
    let cart: Value = put(&app, &path("MUG-B"), None, json!(3)).await.json().await.unwrap();
    assert_eq!(lines(&cart), [("MUG-A".to_owned(), 2), ("MUG-B".to_owned(), 3)]);
    let first = &cart["items"][0];
    assert_eq!((first["product_id"].as_str(), first["name"].as_str()), (Some(id.as_str()), Some("Mug MUG")));
    assert_eq!(
        (first["unit_price"]["amount"].as_i64(), first["line_total"]["amount"].as_i64()),
        (Some(1999), Some(3998))
    );
    assert_eq!(cart["subtotal"], json!({"amount": 5498, "currency": "USD"}));

    // A price change in the catalog shows at the next read: the client never sets prices.
    let patched = app
        .request(Method::PATCH, &format!("/admin/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"variants": [{"sku": "MUG-A", "price": {"amount": 2500, "currency": "USD"}}, {"sku": "MUG-B", "price": {"amount": 500, "currency": "USD"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let cart: Value =
        app.request(Method::GET, &format!("/v1/carts/{cart_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cart["subtotal"]["amount"], 6500);

    let cart: Value = put(&app, &path("MUG-A"), None, json!(0)).await.json().await.unwrap();
    assert_eq!(lines(&cart), [("MUG-B".to_owned(), 3)]);
    problem(put(&app, &path("NOPE-1"), None, json!(1)).await, 422).await;
    problem(put(&app, &path("MUG-B"), None, json!(1000)).await, 422).await;
    problem(put(&app, &path("MUG-B"), None, json!(-1)).await, 422).await;
    problem(put(&app, &path("MUG-B"), None, json!("two")).await, 422).await;
    problem(put(&app, &format!("/v1/carts/{}/items/MUG-B", "0".repeat(32)), None, json!(1)).await, 404).await;
    problem(app.request(Method::GET, "/v1/carts/not-a-cart").send().await.unwrap(), 404).await;

    // A SKU the catalog stops selling is reported, not priced.
    let deleted =
        app.request(Method::DELETE, &format!("/admin/v1/products/{id}")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let cart: Value =
        app.request(Method::GET, &format!("/v1/carts/{cart_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(cart["items"].as_array().unwrap().len(), 0);
    assert_eq!(cart["unavailable"], json!([{"sku": "MUG-B", "quantity": 3, "reason": "not_sold"}]));
    assert_eq!(cart["subtotal"]["amount"], 0);
}

#[tokio::test]
async fn each_shopper_has_one_persistent_cart_no_one_else_reaches() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    product(&app, &admin, "CUP").await;
    let ada = app.customer_token().await;
    let bob = app.customer_token().await;
    problem(app.request(Method::GET, "/v1/cart").send().await.unwrap(), 401).await;
    problem(put(&app, "/v1/cart/items/CUP-A", None, json!(1)).await, 401).await;

    let cart: Value = put(&app, "/v1/cart/items/CUP-A", Some(&ada), json!(2)).await.json().await.unwrap();
    assert_eq!(lines(&cart), [("CUP-A".to_owned(), 2)]);
    let again: Value =
        app.request(Method::GET, "/v1/cart").bearer_auth(&ada).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], cart["id"], "the same cart on every visit");
    assert_eq!(lines(&again), [("CUP-A".to_owned(), 2)]);
    let bobs: Value =
        app.request(Method::GET, "/v1/cart").bearer_auth(&bob).send().await.unwrap().json().await.unwrap();
    assert_ne!(bobs["id"], cart["id"]);
    assert!(lines(&bobs).is_empty());
    // A persistent cart is never reached by its id, not even by its owner.
    let by_id = format!("/v1/carts/{}", cart["id"].as_str().unwrap());
    problem(app.request(Method::GET, &by_id).send().await.unwrap(), 404).await;
    problem(put(&app, &format!("{by_id}/items/CUP-B"), Some(&bob), json!(1)).await, 404).await;
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_shoppers_cart_at_login_capped_by_stock() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    product(&app, &admin, "PAN").await;
    for (sku, on_hand) in [("PAN-A", 4), ("PAN-B", 10)] {
        let set = app
            .request(Method::PUT, &format!("/admin/v1/inventory/{sku}"))
            .bearer_auth(&admin)
            .json(&json!({"on_hand": on_hand}))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200);
    }
    let shopper = app.customer_token().await;
    put(&app, "/v1/cart/items/PAN-A", Some(&shopper), json!(2)).await;
    let guest: Value = app.request(Method::POST, "/v1/carts").send().await.unwrap().json().await.unwrap();
    let guest_id = guest["id"].as_str().unwrap().to_owned();
    put(&app, &format!("/v1/carts/{guest_id}/items/PAN-A"), None, json!(3)).await;
    put(&app, &format!("/v1/carts/{guest_id}/items/PAN-B"), None, json!(2)).await;

    let merge = |cart_id: String, token: Option<String>| {
        let mut request = app.request(Method::POST, "/v1/cart/merge").json(&json!({ "cart_id": cart_id }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    problem(merge(guest_id.clone(), None).await.unwrap(), 401).await;
    let merged: Value = merge(guest_id.clone(), Some(shopper.clone())).await.unwrap().json().await.unwrap();
    assert_eq!(
        lines(&merged),
        [("PAN-A".to_owned(), 4), ("PAN-B".to_owned(), 2)],
        "2 + 3 of PAN-A capped at the 4 in stock"
    );
    assert_eq!(merged["subtotal"]["amount"], 4 * 1999 + 2 * 500);
    problem(app.request(Method::GET, &format!("/v1/carts/{guest_id}")).send().await.unwrap(), 404).await;
    problem(merge(guest_id, Some(shopper.clone())).await.unwrap(), 404).await;
    let cart: Value =
        app.request(Method::GET, "/v1/cart").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    assert_eq!(cart["id"], merged["id"]);
}

#[tokio::test]
async fn the_catalog_answers_what_it_sells_by_sku() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let id = product(&app, &admin, "BOWL").await;
    let found: Value =
        app.request(Method::GET, "/v1/skus?skus=BOWL-B,NOPE,BOWL-A").send().await.unwrap().json().await.unwrap();
    let skus: Vec<&str> = found["items"].as_array().unwrap().iter().map(|i| i["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["BOWL-B", "BOWL-A"], "in the order asked, unknown ones left out");
    assert_eq!(found["items"][0]["product_id"], id.as_str());
    assert_eq!(found["items"][0]["price"], json!({"amount": 500, "currency": "USD"}));
    for bad in ["/v1/skus?skus=", "/v1/skus?skus=a%20b"] {
        problem(app.request(Method::GET, bad).send().await.unwrap(), 422).await;
    }
    let many = (0..101).map(|i| format!("S-{i}")).collect::<Vec<_>>().join(",");
    problem(app.request(Method::GET, &format!("/v1/skus?skus={many}")).send().await.unwrap(), 422).await;
    problem(app.request(Method::GET, "/v1/skus").send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn a_cart_left_idle_is_reported_once_and_its_shopper_reminded() {
    let app = TestApp::start_with(|config| {
        config.set("cart_abandon_secs", 1);
    })
    .await;
    let admin = app.admin_token().await;
    product(&app, &admin, "TEA").await;
    let shopper = app.customer_token().await;
    put(&app, "/v1/cart/items/TEA-A", Some(&shopper), json!(3)).await;
    let guest: Value = app.request(Method::POST, "/v1/carts").send().await.unwrap().json().await.unwrap();
    put(&app, &format!("/v1/carts/{}/items/TEA-B", guest["id"].as_str().unwrap()), None, json!(1)).await;
    // An empty cart is never reported.
    app.request(Method::POST, "/v1/carts").send().await.unwrap();
    let me: Value =
        app.request(Method::GET, "/v1/users/me").bearer_auth(&shopper).send().await.unwrap().json().await.unwrap();
    let email = me["email"].as_str().unwrap().to_owned();
    let reminders = || async {
        app.mails_to(&email).await.iter().filter(|m| m.contains("You left 3 item(s) in your cart")).count()
    };
    app.eventually("the shopper is reminded", || async { reminders().await == 1 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(reminders().await, 1, "once per idle spell");
}
