//! A route of each of the five services answers through the one port, routed by path prefix.

use reqwest::Method;
use serde_json::Value;
use shop_tests::TestApp;

#[tokio::test]
async fn the_product_service_serves_the_seeded_category_tree() {
    let app = TestApp::start().await;
    let body: Value = app.request(Method::GET, "/v1/categories").send().await.unwrap().json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert!(items.len() >= 5, "{body}");
    let phones = items.iter().find(|c| c["slug"] == "phones").expect("a phones category");
    let parent = items.iter().position(|c| c["id"] == phones["parent_id"]).expect("its parent is listed");
    let child = items.iter().position(|c| c["slug"] == "phones").unwrap();
    assert!(parent < child, "parents come first");
    app.stop().await;
}

#[tokio::test]
async fn the_order_service_creates_and_reads_a_guest_cart() {
    let app = TestApp::start().await;
    let response = app.request(Method::POST, "/v1/carts").send().await.unwrap();
    assert_eq!(response.status(), 201);
    let cart: Value = response.json().await.unwrap();
    assert_eq!(cart["items"], serde_json::json!([]));
    assert_eq!(cart["subtotal"], serde_json::json!({"amount": 0, "currency": "USD"}));
    let id = cart["id"].as_str().unwrap();
    let read: Value = app.request(Method::GET, &format!("/v1/carts/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["id"], id);
    let missing = app.request(Method::GET, &format!("/v1/carts/{}", "0".repeat(32))).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_inventory_service_answers_404_for_an_unknown_sku() {
    let app = TestApp::start().await;
    let response = app.request(Method::GET, "/v1/inventory/NO-SUCH-SKU").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    app.stop().await;
}

#[tokio::test]
async fn a_shopper_registers_signs_in_and_refreshes() {
    let app = TestApp::start().await;
    let credentials = serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"});
    let mut register = credentials.clone();
    register["name"] = "Ada".into();
    let response = app.request(Method::POST, "/v1/auth/register").json(&register).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let response = app.request(Method::POST, "/v1/auth/login").json(&credentials).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value =
        app.request(Method::GET, "/v1/users/me").bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
    let refreshed = app
        .request(Method::POST, "/v1/auth/refresh")
        .json(&serde_json::json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    // The key set is public, and served by the same port as everything else.
    let jwks: Value = app.request(Method::GET, "/.well-known/jwks.json").send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    app.stop().await;
}

#[tokio::test]
async fn the_user_service_accepts_a_reset_request_without_revealing_accounts() {
    let app = TestApp::start().await;
    let response = app
        .request(Method::POST, "/v1/auth/password-reset")
        .json(&serde_json::json!({"email": "nobody@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = app.request(Method::GET, "/v1/users/me").send().await.unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn the_payment_service_verifies_webhook_signatures() {
    let secret = "whsec_e2e";
    let app = TestApp::start_with(|config| {
        config.set("stripe_webhook_secret", secret);
    })
    .await;
    let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;
    let unsigned = app.request(Method::POST, "/v1/payments/webhooks/stripe").body(body).send().await.unwrap();
    assert_eq!(unsigned.status(), 400);
    let forged = app
        .request(Method::POST, "/v1/payments/webhooks/stripe")
        .header("stripe-signature", format!("t={},v1={}", crate::payments::now(), "ab".repeat(32)))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let signature = shop_payment_signature(body, secret);
    for duplicate in [false, true] {
        let response = app
            .request(Method::POST, "/v1/payments/webhooks/stripe")
            .header("stripe-signature", &signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let ack: Value = response.json().await.unwrap();
        assert_eq!(ack["duplicate"], duplicate);
    }
    app.stop().await;
}

fn shop_payment_signature(body: &str, secret: &str) -> String {
    crate::payments::sign(body, secret, crate::payments::now())
}
