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
    let app = TestApp::start_with(|config| config.stripe_webhook_secret = Some(secret.to_owned().into())).await;
    let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;
    let unsigned = app.request(Method::POST, "/v1/payments/webhooks/stripe").body(body).send().await.unwrap();
    assert_eq!(unsigned.status(), 400);
    let forged = app
        .request(Method::POST, "/v1/payments/webhooks/stripe")
        .header("stripe-signature", format!("t={},v1={}", now(), "ab".repeat(32)))
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

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Signs as Stripe does, independently of the service's own code: HMAC-SHA256 over "t.body".
fn shop_payment_signature(body: &str, secret: &str) -> String {
    let t = now();
    let mac = hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", mac.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// HMAC-SHA256 (RFC 2104) over a from-scratch SHA-256, so the test shares no code with the service.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
    let inner_hash = sha256(&inner);
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner_hash.iter().copied()).collect();
    sha256(&outer)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in padded.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}
