//! The pricing engine's settings end to end: admins manage shipping zones and promotions; shoppers
//! and strangers cannot.

use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::{TestApp, problem};

fn zone_body(name: &str) -> Value {
    json!({
        "name": name, "currency": "EUR", "countries": ["de", "AT"], "tax_inclusive": true, "shipping_taxed": true,
        "tax_rates": [
            {"country": "DE", "name": "MwSt", "category": "standard", "rate_bp": 1900},
            {"country": "DE", "name": "MwSt", "category": "reduced", "rate_bp": 700}
        ],
        "methods": [
            {"id": "standard", "name": "Standard", "pricing": {"type": "flat", "amount": 490}, "free_over": 5000,
                "min_days": 2, "max_days": 4},
            {"id": "express", "name": "Express", "pricing": {"type": "by_weight", "tiers": [
                {"from": 0, "amount": 990}, {"from": 5000, "amount": 1990}]}, "min_days": 1, "max_days": 1}
        ]
    })
}

#[tokio::test]
async fn admins_manage_shipping_zones_and_no_one_else_can() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    let call = |method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = app.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let created =
        call(Method::POST, "/admin/v1/shipping-zones", Some(&admin), Some(zone_body("Germany"))).await.unwrap();
    assert_eq!(created.status(), 201);
    let zone: Value = created.json().await.unwrap();
    let id = zone["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("zone_"));
    assert_eq!(zone["countries"], json!(["DE", "AT"]));
    assert_eq!(zone["methods"][1]["pricing"]["tiers"][1]["amount"], 1990);
    let path = format!("/admin/v1/shipping-zones/{id}");
    assert_eq!(app.get_json(&path, &admin).await, zone);
    let listed = app.get_json("/admin/v1/shipping-zones", &admin).await;
    assert!(listed["items"].as_array().unwrap().iter().any(|z| z["id"] == id.as_str()));

    let mut changed = zone_body("DACH");
    changed["countries"] = json!(["DE", "AT", "CH"]);
    let replaced = call(Method::PUT, &path, Some(&admin), Some(changed)).await.unwrap();
    assert_eq!(replaced.status(), 200);
    assert_eq!(app.get_json(&path, &admin).await["name"], "DACH");

    let mut bad = zone_body("Bad");
    bad["countries"] = json!(["Germany"]);
    bad["methods"][0]["pricing"] = json!({"type": "flat", "amount": -1});
    let refused =
        problem(call(Method::POST, "/admin/v1/shipping-zones", Some(&admin), Some(bad)).await.unwrap(), 422).await;
    let fields: Vec<&str> =
        refused["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"countries") && fields.contains(&"methods[0].pricing"), "{refused}");

    for (method, target) in [(Method::GET, "/admin/v1/shipping-zones"), (Method::DELETE, path.as_str())] {
        assert_eq!(call(method.clone(), target, None, None).await.unwrap().status(), 401);
        assert_eq!(call(method, target, Some(&shopper), None).await.unwrap().status(), 403);
    }
    assert_eq!(call(Method::DELETE, &path, Some(&admin), None).await.unwrap().status(), 204);
    problem(call(Method::GET, &path, Some(&admin), None).await.unwrap(), 404).await;
    problem(call(Method::DELETE, &path, Some(&admin), None).await.unwrap(), 404).await;
    app.stop().await;
}

#[tokio::test]
async fn admins_manage_promotions_whose_codes_are_unique_ignoring_case() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    let post = |body: Value, token: &str| {
        app.request(Method::POST, "/admin/v1/promotions").bearer_auth(token).json(&body).send()
    };
    let body = json!({
        "name": "Ten off", "code": "ten-off", "currency": "USD", "exclusive": true, "priority": 5,
        "action": {"type": "lines_percent", "percent_bp": 1000, "target": {"categories": ["cat-kitchen"]}},
        "conditions": {"min_subtotal": 2000, "starts_at": "2026-01-01T00:00:00Z"},
        "limits": {"total": 100, "per_customer": 1}
    });
    let created = post(body.clone(), &admin).await.unwrap();
    assert_eq!(created.status(), 201);
    let promotion: Value = created.json().await.unwrap();
    assert_eq!(promotion["code"], "TEN-OFF");
    assert_eq!(promotion["active"], true);
    let id = promotion["id"].as_str().unwrap().to_owned();

    let mut clash = body.clone();
    clash["code"] = json!("Ten-Off");
    clash["name"] = json!("Another");
    let taken = problem(post(clash.clone(), &admin).await.unwrap(), 409).await;
    assert!(taken["detail"].as_str().unwrap().contains("TEN-OFF"), "{taken}");
    assert_eq!(post(body.clone(), &shopper).await.unwrap().status(), 403);

    // Paused and re-coded: the old code is free again.
    let mut paused = body.clone();
    paused["active"] = json!(false);
    paused["code"] = json!("TEN-AGAIN");
    let path = format!("/admin/v1/promotions/{id}");
    let replaced = app.request(Method::PUT, &path).bearer_auth(&admin).json(&paused).send().await.unwrap();
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        (replaced["active"].clone(), replaced["created_at"].clone()),
        (json!(false), promotion["created_at"].clone())
    );
    assert_eq!(post(clash, &admin).await.unwrap().status(), 201);

    let unknown = json!({"name": "x", "action": {"type": "free_lunch"}});
    problem(post(unknown, &admin).await.unwrap(), 422).await;
    let listed = app.get_json("/admin/v1/promotions", &admin).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.request(Method::DELETE, &path).bearer_auth(&admin).send().await.unwrap().status(), 204);
    assert_eq!(app.get_json("/admin/v1/promotions", &admin).await["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}
