//! The pricing engine's settings end to end: admins manage shipping zones and promotions; shoppers
//! and strangers cannot.

use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::{TestApp, problem, unique};

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

async fn admin_post(app: &TestApp, admin: &str, path: &str, body: Value) -> Value {
    let response = app.request(Method::POST, path).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_cart_is_priced_with_its_codes_shipping_and_the_tax_of_its_destination() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = json!({
        "name": "Pour-over Kettle", "brand": "Copperleaf", "category_id": "cat-kitchen",
        "price": {"amount": 2000, "currency": "USD"}, "variants": [{"sku": "PRC-KETTLE", "weight_grams": 900}]
    });
    admin_post(&app, &admin, "/admin/v1/products", product).await;
    admin_post(&app, &admin, "/admin/v1/shipping-zones", json!({
        "name": "United States", "currency": "USD", "countries": ["US"],
        "tax_rates": [{"country": "US", "region": "NY", "name": "Sales tax", "category": "standard", "rate_bp": 800}],
        "methods": [
            {"id": "standard", "name": "Standard", "pricing": {"type": "flat", "amount": 599}, "min_days": 3, "max_days": 5},
            {"id": "express", "name": "Express", "pricing": {"type": "by_weight", "tiers": [
                {"from": 0, "amount": 1200}, {"from": 2000, "amount": 1800}]}, "min_days": 1, "max_days": 2}
        ]
    }))
    .await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({
            "name": "Ten off the kitchen", "code": "save10", "currency": "USD",
            "action": {"type": "lines_percent", "percent_bp": 1000, "target": {"categories": ["cat-home-garden"]}},
            "conditions": {"min_subtotal": 3000}
        }),
    )
    .await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({
            "name": "Big spender", "code": "BIG", "currency": "USD",
            "action": {"type": "order_fixed", "amount": 2500}, "conditions": {"min_subtotal": 10000}
        }),
    )
    .await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({
            "name": "Free shipping over $50", "currency": "USD", "action": {"type": "free_shipping"},
            "conditions": {"min_subtotal": 5000}
        }),
    )
    .await;

    let cart: Value = app.request(Method::POST, "/v1/carts").send().await.unwrap().json().await.unwrap();
    let id = cart["id"].as_str().unwrap().to_owned();
    let put = |path: String, body: Value| app.request(Method::PUT, &path).json(&body).send();
    assert_eq!(put(format!("/v1/carts/{id}/items/PRC-KETTLE"), json!({"quantity": 2})).await.unwrap().status(), 200);

    // What ships it where: express is weight-tiered (two kettles weigh 1.8 kg).
    let offers: Value = app
        .request(Method::GET, &format!("/v1/carts/{id}/shipping-methods?country=us"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<(&str, i64)> = offers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["price"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, [("standard", 599), ("express", 1200)]);
    let abroad = app.request(Method::GET, &format!("/v1/carts/{id}/shipping-methods?country=JP")).send().await.unwrap();
    assert!(problem(abroad, 422).await["detail"].as_str().unwrap().contains("do not ship to JP"));

    let choose = |method: &str| json!({"country": "US", "region": "ny", "postal_code": "10001", "method_id": method});
    let cart: Value = put(format!("/v1/carts/{id}/shipping"), choose("standard")).await.unwrap().json().await.unwrap();
    let pricing = &cart["pricing"];
    // 4,000 + 599 shipping (untaxed) + 8 % of 4,000; the free-shipping promotion is short of $50.
    assert_eq!((pricing["subtotal"].as_i64(), pricing["shipping_total"].as_i64()), (Some(4000), Some(599)));
    assert_eq!((pricing["tax_total"].as_i64(), pricing["grand_total"].as_i64()), (Some(320), Some(4919)));
    let refused = &pricing["promotions"][0];
    assert_eq!((refused["applied"].as_bool(), refused["reason"].as_str()), (Some(false), Some("minimum_not_met")));
    let teleport = put(format!("/v1/carts/{id}/shipping"), choose("teleport")).await.unwrap();
    assert_eq!(problem(teleport, 422).await["errors"][0]["field"], "method_id");

    let code =
        |code: &str| app.request(Method::POST, &format!("/v1/carts/{id}/codes")).json(&json!({"code": code})).send();
    let unknown = problem(code("nope").await.unwrap(), 422).await;
    assert!(unknown["type"].as_str().unwrap().ends_with("code-unknown"), "{unknown}");
    let short = problem(code("big").await.unwrap(), 422).await;
    assert!(short["type"].as_str().unwrap().ends_with("code-minimum-not-met"), "{short}");
    assert!(short["detail"].as_str().unwrap().contains("100.00 USD"), "{short}");

    let cart: Value = code("Save10").await.unwrap().json().await.unwrap();
    assert_eq!(cart["codes"], json!(["SAVE10"]));
    let pricing = &cart["pricing"];
    // 10 % off the kitchen (a sub-category of Home & Garden), tax after the discount: 8 % of 3,600.
    assert_eq!((pricing["discount_total"].as_i64(), pricing["tax_total"].as_i64()), (Some(400), Some(288)));
    assert_eq!(pricing["grand_total"].as_i64(), Some(3600 + 599 + 288));

    // A third kettle: over $50, so shipping is free too; the two promotions stack.
    let cart: Value =
        put(format!("/v1/carts/{id}/items/PRC-KETTLE"), json!({"quantity": 3})).await.unwrap().json().await.unwrap();
    let pricing = &cart["pricing"];
    assert_eq!((pricing["shipping_total"].as_i64(), pricing["discount_total"].as_i64()), (Some(0), Some(600 + 599)));
    assert_eq!(pricing["grand_total"].as_i64(), Some(5400 + 432));
    assert_eq!(pricing["lines"][0]["total"].as_i64(), Some(5400 + 432));

    let cart: Value = app
        .request(Method::DELETE, &format!("/v1/carts/{id}/codes/SAVE10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cart["codes"], json!([]));
    assert_eq!(cart["pricing"]["grand_total"].as_i64(), Some(6000 + 480));
    // What the cart says is what a later read says.
    let again: Value = app.request(Method::GET, &format!("/v1/carts/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["pricing"], cart["pricing"]);
    app.stop().await;
}

/// A product with SKU `sku` at `price` cents and `on_hand` units.
async fn stocked(app: &TestApp, admin: &str, sku: &str, price: i64, on_hand: i64) {
    let body = json!({"name": format!("Lamp {sku}"), "brand": "Lumen", "category_id": "cat-furniture",
        "price": {"amount": price, "currency": "USD"}, "variants": [{"sku": sku}]});
    admin_post(app, admin, "/admin/v1/products", body).await;
    app.set_stock(admin, sku, on_hand).await;
}

fn address(country: &str, postal_code: &str) -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Main St", "city": "Anywhere", "postal_code": postal_code, "country": country})
}

async fn checkout(app: &TestApp, token: &str, cart_id: &str, address: Value, key: &str) -> reqwest::Response {
    app.request(Method::POST, "/v1/orders")
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"cart_id": cart_id, "shipping_address": address, "payment_method": "pm_card_visa"}))
        .send()
        .await
        .unwrap()
}

async fn europe(app: &TestApp, admin: &str) {
    admin_post(app, admin, "/admin/v1/shipping-zones", json!({
        "name": "Europe", "currency": "USD", "countries": ["DE", "FR"], "tax_inclusive": true, "shipping_taxed": true,
        "tax_rates": [
            {"country": "DE", "name": "MwSt", "category": "standard", "rate_bp": 1900},
            {"country": "FR", "name": "TVA", "category": "standard", "rate_bp": 2000}
        ],
        "methods": [{"id": "standard", "name": "Standard", "pricing": {"type": "flat", "amount": 1190}, "free_over": 20000,
            "min_days": 3, "max_days": 6}]
    }))
    .await;
}

#[tokio::test]
async fn a_checkout_charges_the_carts_breakdown_with_a_code_and_vat_included_and_refuses_other_countries() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "PRC-LAMP", 11_900, 10).await;
    europe(&app, &admin).await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({
            "name": "Welcome", "code": "WELCOME", "currency": "USD", "action": {"type": "order_fixed", "amount": 1190},
            "conditions": {"first_order_only": true}
        }),
    )
    .await;
    let cart = app.cart_with(&shopper, "PRC-LAMP", 1).await;
    let entered =
        app.request(Method::POST, "/v1/cart/codes").bearer_auth(&shopper).json(&json!({"code": "welcome"})).send();
    assert_eq!(entered.await.unwrap().status(), 200);
    let quoted: Value = app
        .request(Method::PUT, "/v1/cart/shipping")
        .bearer_auth(&shopper)
        .json(&json!({"country": "DE", "postal_code": "10115", "method_id": "standard"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pricing = quoted["pricing"].clone();
    // 119.00 less 11.90, shipping 11.90 (VAT included in every price): 119.00 in all, 19 % of it VAT.
    assert_eq!(pricing["grand_total"].as_i64(), Some(11_900));
    assert_eq!(pricing["tax_inclusive"], true);
    assert_eq!(pricing["tax_total"].as_i64(), Some(1_710 + 190));

    // Outside every zone: refused, nothing placed.
    let refused = problem(checkout(&app, &shopper, &cart, address("JP", "100-0001"), "k-jp").await, 422).await;
    assert_eq!(refused["errors"][0]["field"], "shipping_address.country", "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("JP"));

    let placed = checkout(&app, &shopper, &cart, address("DE", "10115"), "k-de").await;
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["pricing"], pricing, "the order keeps exactly what the cart showed");
    assert_eq!(placed["total"]["amount"].as_i64(), Some(11_900));
    let id = placed["id"].as_str().unwrap().to_owned();
    let done = app.settled(&shopper, &id).await;
    assert_eq!(done["status"], "shipped", "{done}");
    let paid: Value = app.get_json(&format!("/admin/v1/payments?order_id={id}"), &admin).await;
    assert_eq!(paid["items"][0]["amount"]["amount"].as_i64(), Some(11_900), "the payment is the grand total");

    // A second cart: the first-order code no longer applies, and the cart says so.
    app.cart_with(&shopper, "PRC-LAMP", 1).await;
    let again =
        app.request(Method::POST, "/v1/cart/codes").bearer_auth(&shopper).json(&json!({"code": "WELCOME"})).send();
    let again = problem(again.await.unwrap(), 422).await;
    assert!(again["type"].as_str().unwrap().ends_with("code-first-order-only"), "{again}");
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_shoppers_race_for_a_code_of_ten_uses_and_exactly_ten_orders_carry_it() {
    // A slow payment provider keeps the orders waiting long enough to cancel one.
    let app = TestApp::start_with(|config| {
        config.set("simulated_latency_ms", 1_500);
    })
    .await;
    let admin = app.admin_token().await;
    stocked(&app, &admin, "PRC-RACE", 1_000, 500).await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({
            "name": "Ten lucky ones", "code": "LUCKY10", "currency": "USD",
            "action": {"type": "order_percent", "percent_bp": 5000}, "limits": {"total": 10}
        }),
    )
    .await;
    let shop = &app;
    let shopper_with_code = move || async move {
        let app = shop;
        let token = app.customer_token().await;
        let cart = app.cart_with(&token, "PRC-RACE", 1).await;
        let entered = app.request(Method::POST, "/v1/cart/codes").bearer_auth(&token).json(&json!({"code": "lucky10"}));
        let entered = entered.send().await.unwrap();
        (token, cart, entered.status().as_u16())
    };
    // Each shopper has the code in their cart: it applies to every cart while uses are left.
    let shoppers = futures::future::join_all((0..100).map(|_| shopper_with_code())).await;
    assert!(shoppers.iter().all(|(_, _, entered)| *entered == 200));
    let outcomes = futures::future::join_all(shoppers.iter().map(|(token, cart, _)| async move {
        let response = checkout(shop, token, cart, address("GB", "SW1Y 4JH"), "k-race").await;
        let status = response.status().as_u16();
        (token.clone(), status, response.json::<Value>().await.unwrap())
    }))
    .await;
    let won: Vec<&(String, u16, Value)> = outcomes.iter().filter(|(_, status, _)| *status == 202).collect();
    assert_eq!(won.len(), 10, "exactly ten orders carry the code");
    for (_, status, body) in outcomes.iter().filter(|(_, status, _)| *status != 202) {
        assert_eq!(*status, 422, "{body}");
        assert!(body["type"].as_str().unwrap().ends_with("code-used-up"), "{body}");
        assert!(body["detail"].as_str().unwrap().contains("LUCKY10"), "{body}");
    }
    assert!(won.iter().all(|(_, _, order)| order["pricing"]["discount_total"].as_i64() == Some(500)));

    // While every use is taken, a newcomer's code is refused at once.
    let (late, late_cart, entered) = shopper_with_code().await;
    assert_eq!(entered, 422);
    // One of the ten is cancelled: its use comes back, and the newcomer's code applies.
    let (winner, _, order) = won[0];
    let id = order["id"].as_str().unwrap();
    let cancelled = app.request(Method::POST, &format!("/v1/orders/{id}/cancel")).bearer_auth(winner).send();
    assert_eq!(cancelled.await.unwrap().status(), 200);
    let entered = app.request(Method::POST, "/v1/cart/codes").bearer_auth(&late).json(&json!({"code": "LUCKY10"}));
    assert_eq!(entered.send().await.unwrap().status(), 200);
    let placed = checkout(&app, &late, &late_cart, address("GB", "SW1Y 4JH"), "k-late").await;
    assert_eq!(placed.status(), 202);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["pricing"]["promotions"][0]["code"], "LUCKY10");
    app.stop().await;
}

#[tokio::test]
async fn a_refund_of_a_discounted_line_gives_back_what_was_paid_for_it_tax_included() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let shopper = app.customer_token().await;
    stocked(&app, &admin, "PRC-RFD", 3_333, 10).await;
    europe(&app, &admin).await;
    admin_post(
        &app,
        &admin,
        "/admin/v1/promotions",
        json!({"name": "Ten off", "currency": "USD", "action": {"type": "order_percent", "percent_bp": 1000}}),
    )
    .await;
    let cart = app.cart_with(&shopper, "PRC-RFD", 3).await;
    let placed: Value = checkout(&app, &shopper, &cart, address("DE", "10115"), "k-rfd").await.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let line = placed["pricing"]["lines"][0].clone();
    let (line_total, shipping) =
        (line["total"].as_i64().unwrap(), placed["pricing"]["shipping"]["total"].as_i64().unwrap());
    assert!(line["discount_total"].as_i64().unwrap() > 0 && line["tax_total"].as_i64().unwrap() > 0, "{line}");
    assert!(shipping > 0);
    let refund = |body: Value, key: &str| {
        app.request(Method::POST, &format!("/admin/v1/orders/{id}/refunds"))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    assert_eq!(app.settled(&shopper, &id).await["status"], "shipped");
    let paid = || async {
        let payments = app.get_json(&format!("/admin/v1/payments?order_id={id}"), &admin).await;
        (payments["items"][0]["refunded"].as_i64().unwrap_or(-1), payments["items"][0]["status"].clone())
    };
    let one_unit = line_total / 3;
    assert!(one_unit < 3_333, "a unit gives back what was paid, not its catalog price: {one_unit}");
    let one = json!({"lines": [{"sku": "PRC-RFD", "quantity": 1}]});
    let once: Value = refund(one.clone(), "r-0").await.unwrap().json().await.unwrap();
    assert_eq!(once["refunds"][0]["amount"].as_i64(), Some(one_unit), "{once}");
    // The same key again refunds nothing more; with another refund it is refused.
    let again: Value = refund(one, "r-0").await.unwrap().json().await.unwrap();
    assert_eq!(again["refunds"].as_array().unwrap().len(), 1);
    let reused = refund(json!({"lines": [{"sku": "PRC-RFD", "quantity": 2}]}), "r-0").await.unwrap();
    assert_eq!(problem(reused, 422).await["type"], "/problems/idempotency-key-reused");
    app.eventually("the payment gives back one unit", || async { paid().await.0 == one_unit }).await;
    // The shopper is told what this refund gives back.
    let me: Value = app.get_json("/v1/users/me", &shopper).await;
    let email = me["email"].as_str().unwrap().to_owned();
    let currency = placed["total"]["currency"].as_str().unwrap();
    let told = format!("We are refunding {}.{:02} {currency} of your order {id}", one_unit / 100, one_unit % 100);
    app.eventually("the shopper is told of the refund", || async {
        app.mails_to(&email).await.iter().any(|m| m.contains("A refund for your order") && m.contains(&told))
    })
    .await;

    // Bad refunds change nothing.
    for (body, field) in [
        (json!({"lines": [{"sku": "PRC-RFD", "quantity": 3}]}), "lines[0].quantity"),
        (json!({"lines": [{"sku": "NOPE", "quantity": 1}]}), "lines[0].sku"),
        (json!({}), "lines"),
    ] {
        let refused = problem(refund(body, "r-bad").await.unwrap(), 422).await;
        assert_eq!(refused["errors"][0]["field"], field, "{refused}");
    }
    let customer = app
        .request(Method::POST, &format!("/admin/v1/orders/{id}/refunds"))
        .bearer_auth(&shopper)
        .header("idempotency-key", "r-x")
        .json(&json!({"shipping": true}))
        .send();
    assert_eq!(customer.await.unwrap().status(), 403);

    // The rest, with the shipping: exactly what was paid in all, and the order is refunded.
    let rest = json!({"lines": [{"sku": "PRC-RFD", "quantity": 2}], "shipping": true, "reason": "returned"});
    let rest: Value = refund(rest, "r-1").await.unwrap().json().await.unwrap();
    assert_eq!(rest["status"], "refunded", "{rest}");
    assert_eq!(rest["refunds"][1]["amount"].as_i64(), Some(line_total - one_unit + shipping));
    let total = placed["total"]["amount"].as_i64().unwrap();
    app.eventually("the payment is refunded whole", || async { paid().await == (total, json!("refunded")) }).await;
    problem(refund(json!({"shipping": true}), "r-2").await.unwrap(), 409).await;
    app.stop().await;
}

#[tokio::test]
async fn shoppers_are_told_about_featured_promotions_in_force_and_no_others() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let tag = unique("FEAT").to_uppercase().replace('-', "_");
    // Each has a code, so none changes what another test's cart is charged.
    let cases = [
        ("shown", json!({"featured": true, "priority": 3})),
        ("shown-first", json!({"featured": true, "priority": 9, "conditions": {"ends_at": "2099-06-30T00:00:00Z"}})),
        ("not featured", json!({})),
        ("paused", json!({"featured": true, "active": false})),
        ("not yet", json!({"featured": true, "conditions": {"starts_at": "2099-01-01T00:00:00Z"}})),
        (
            "over",
            json!({"featured": true, "conditions": {"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2021-01-01T00:00:00Z"}}),
        ),
        ("for one shopper", json!({"featured": true, "conditions": {"customers": ["vip@example.com"]}})),
    ];
    for (i, (what, extra)) in cases.iter().enumerate() {
        let mut body = json!({"name": format!("{tag} {what}"), "code": format!("{tag}{i}"),
            "action": {"type": "order_percent", "percent_bp": 500}});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let created =
            app.request(Method::POST, "/admin/v1/promotions").bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(created.status(), 201, "{what}");
        assert_eq!(
            created.json::<Value>().await.unwrap()["featured"],
            extra.get("featured").cloned().unwrap_or(json!(false))
        );
    }

    // Anyone may ask; the answer is the same for everyone, so it may be cached a minute.
    let response = app.request(Method::GET, "/v1/promotions").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    let listed: Value = response.json().await.unwrap();
    let ours: Vec<&Value> =
        listed["items"].as_array().unwrap().iter().filter(|p| p["name"].as_str().unwrap().starts_with(&tag)).collect();
    assert_eq!(
        ours,
        [
            &json!({"name": format!("{tag} shown-first"), "code": format!("{tag}1"), "ends_at": "2099-06-30T00:00:00Z"}),
            &json!({"name": format!("{tag} shown"), "code": format!("{tag}0"), "ends_at": null}),
        ],
        "in force, open to all, highest priority first: {listed}"
    );

    // The storefront's home page shows them with their codes.
    let home = app.request(Method::GET, "/").header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    assert!(home.contains(&format!("<strong>{tag} shown-first</strong>")), "{home}");
    assert!(home.contains(&format!(r#"<span class="code">{tag}1</span>"#)));
    assert!(home.contains("until June 30"));
    assert!(!home.contains(&format!("{tag} paused")));
    app.stop().await;
}
