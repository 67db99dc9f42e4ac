//! Catalog search, bulk import, image uploads and the index following the store, end to end.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use shop_tests::TestApp;

fn product(id: &str, name: &str, brand: &str, category: &str, price: i64, description: &str) -> Value {
    json!({
        "id": id, "name": name, "brand": brand, "category_id": category, "description": description,
        "price": {"amount": price, "currency": "USD"},
        "variants": [{"sku": format!("{id}-A")}, {"sku": format!("{id}-B"), "price": {"amount": price + 500, "currency": "USD"}}]
    })
}

fn catalog() -> Vec<Value> {
    vec![
        product("p-1", "Trail Running Shoe", "Acme", "cat-shoes", 8_999, "Grippy soles for muddy trails."),
        product("p-2", "Road Running Shoe", "Bolt", "cat-shoes", 12_000, "Cushioned for long road miles."),
        product("p-3", "Leather Hiking Boot", "Acme", "cat-shoes", 15_000, "Waterproof full-grain leather."),
        product("p-4", "Wireless Headphones", "Sonic", "cat-audio", 19_900, "Thirty hours of battery."),
        product("p-5", "Espresso Machine", "Copperleaf", "cat-kitchen", 2_000, "Rich coffee at home."),
        product("p-6", "Noise Cancelling Headphones", "Sonic", "cat-audio", 29_900, "Silence on every flight."),
        product("p-7", "Gaming Laptop", "Lumen", "cat-laptops", 149_900, "A fast screen and a faster chip."),
        product("p-8", "Camping Tent", "Summit", "cat-outdoor", 39_900, "Sleeps four, pitches in minutes."),
    ]
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

async fn import(app: &TestApp, admin: &str, body: String) -> reqwest::Response {
    app.request(Method::POST, "/admin/v1/products/import")
        .bearer_auth(admin)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn search(app: &TestApp, query: &str) -> Value {
    let response = app.request(Method::GET, &format!("/v1/products?{query}")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

async fn total(app: &TestApp, query: &str) -> u64 {
    search(app, query).await["total"].as_u64().unwrap()
}

/// Imports the catalog and waits until the index has it all.
async fn read_status(app: &TestApp, id: &str) -> u16 {
    app.request(Method::GET, &format!("/v1/products/{id}")).send().await.unwrap().status().as_u16()
}

async fn imported_catalog(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    let response = import(app, &admin, ndjson(&catalog())).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["imported"], 8, "{report}");
    app.eventually("the index holds the catalog", || async { total(app, "").await == 8 }).await;
    admin
}

#[tokio::test]
async fn search_matches_text_with_typos_filters_by_category_tree_brand_price_and_stock() {
    let app = TestApp::start().await;
    let admin = imported_catalog(&app).await;

    let running = search(&app, "q=running").await;
    assert_eq!(running["total"], 2);
    assert_eq!(ids(&running).into_iter().collect::<BTreeSet<_>>(), BTreeSet::from(["p-1".into(), "p-2".into()]));
    assert_eq!(total(&app, "q=runing").await, 2, "a typo in a longer word still matches");
    assert_eq!(total(&app, "q=headphone").await, 2, "stemmed");
    assert_eq!(total(&app, "q=acme").await, 2, "brand");
    assert_eq!(ids(&search(&app, "q=coffee").await), ["p-5"], "description");
    assert_eq!(total(&app, "q=running+leather").await, 0, "every word must match");
    assert_eq!(ids(&search(&app, "q=running+acme").await), ["p-1"]);

    assert_eq!(total(&app, "category=cat-electronics").await, 3, "a parent includes its sub-categories");
    assert_eq!(total(&app, "category=electronics").await, 3, "by slug");
    assert_eq!(total(&app, "category=cat-audio").await, 2);
    assert_eq!(total(&app, "category=cat-electronics&q=headphones").await, 2);
    assert_eq!(total(&app, "brand=Acme").await, 2);
    assert_eq!(total(&app, "min_price=10000&max_price=19900").await, 3, "inclusive bounds");
    assert_eq!(total(&app, "min_price=100000").await, 1);

    assert_eq!(total(&app, "in_stock=true").await, 0, "nothing has stock yet");
    for sku in ["p-1-A", "p-4-B", "p-7-A"] {
        app.set_stock(&admin, sku, 5).await;
    }
    app.eventually("stock reaches the index", || async { total(&app, "in_stock=true").await == 3 }).await;
    assert_eq!(total(&app, "in_stock=false").await, 5);
    let product: Value = app.request(Method::GET, "/v1/products/p-4").send().await.unwrap().json().await.unwrap();
    assert_eq!(product["in_stock"], true, "the product itself says so too");
    app.set_stock(&admin, "p-4-B", 0).await;
    app.eventually("sold out reaches the index", || async { total(&app, "in_stock=true").await == 2 }).await;
    app.stop().await;
}

#[tokio::test]
async fn search_sorts_pages_with_cursors_and_counts_facets() {
    let app = TestApp::start().await;
    let admin = imported_catalog(&app).await;

    assert_eq!(ids(&search(&app, "sort=price_asc&limit=1").await), ["p-5"]);
    assert_eq!(ids(&search(&app, "sort=price_desc&limit=1").await), ["p-7"]);

    // Pages of three in price order visit every product once, and the last page has no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let query = match &cursor {
            Some(c) => format!("sort=price_asc&limit=3&cursor={c}"),
            None => "sort=price_asc&limit=3".to_owned(),
        };
        let page = search(&app, &query).await;
        assert_eq!(page["total"], 8);
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["p-5", "p-1", "p-2", "p-3", "p-4", "p-6", "p-8", "p-7"]);

    let shoes = search(&app, "category=cat-shoes").await;
    let brands: BTreeMap<String, u64> = shoes["facets"]["brand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["value"].as_str().unwrap().to_owned(), f["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(brands, BTreeMap::from([("Acme".into(), 2), ("Bolt".into(), 1)]));
    assert_eq!(shoes["facets"]["category"], json!([{"value": "cat-shoes", "count": 3}]));
    let buckets: Vec<u64> =
        shoes["facets"]["price"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).collect();
    assert_eq!(buckets, [0, 0, 1, 2, 0]);
    assert_eq!(shoes["facets"]["price"][4], json!({"from": 25000, "to": null, "count": 0}));
    let everything = search(&app, "").await;
    assert_eq!(everything["facets"]["category"].as_array().unwrap().len(), 5);

    // The newest product comes first when browsing.
    let created = app
        .request(Method::POST, "/admin/v1/products")
        .bearer_auth(&admin)
        .json(&json!({"name": "Trail Running Sock", "brand": "Acme", "category_id": "cat-shoes",
            "price": {"amount": 999, "currency": "USD"}, "variants": [{"sku": "SOCK-1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sock = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.eventually("the new product is indexed", || async { total(&app, "").await == 9 }).await;
    assert_eq!(ids(&search(&app, "sort=newest&limit=1").await), std::slice::from_ref(&sock));
    assert_eq!(ids(&search(&app, "limit=1").await), [sock], "browsing without q is newest first");

    // Search answers are cacheable like product pages.
    let response = app.request(Method::GET, "/v1/products?q=shoe").send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.request(Method::GET, "/v1/products?q=shoe").header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    app.stop().await;
}

#[tokio::test]
async fn bad_search_parameters_are_refused_with_problems() {
    let app = TestApp::start().await;
    for (query, status, field) in [
        ("category=cat-nope", 422, Some("category")),
        ("min_price=-1", 422, Some("min_price")),
        ("max_price=-5", 422, Some("max_price")),
        ("min_price=500&max_price=100", 422, Some("max_price")),
        ("limit=0", 422, Some("limit")),
        ("limit=101", 422, Some("limit")),
        ("cursor=garbage", 422, Some("cursor")),
        ("sort=cheapest", 400, None),
        ("min_price=abc", 400, None),
        ("colour=red", 400, None),
    ] {
        let response = app.request(Method::GET, &format!("/v1/products?{query}")).send().await.unwrap();
        assert_eq!(response.status(), status, "{query}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{query}");
        if let Some(field) = field {
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
        }
    }
    let long = "a".repeat(201);
    let response = app.request(Method::GET, &format!("/v1/products?q={long}")).send().await.unwrap();
    assert_eq!(response.status(), 422);
    app.stop().await;
}

#[tokio::test]
async fn an_import_reports_bad_lines_by_number_and_writes_only_whole_good_products() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let good = product("imp-1", "Kettle", "Copperleaf", "cat-kitchen", 3_900, "Boils fast.");
    let mut unknown_category = product("imp-4", "Lamp", "Mesa", "cat-lighting", 4_900, "");
    unknown_category["variants"] = json!([{"sku": "LAMP-1"}]);
    let mut negative = product("imp-5", "Chair", "Mesa", "cat-furniture", -100, "");
    negative["variants"] = json!([{"sku": "CHAIR-1"}]);
    let mut no_id = product("x", "Skillet", "Ovenbird", "cat-kitchen", 4_500, "");
    no_id.as_object_mut().unwrap().remove("id");
    no_id["variants"] = json!([{"sku": "SKILLET-1"}]);
    let mut taken_sku = product("imp-8", "Mug", "Mesa", "cat-kitchen", 900, "");
    taken_sku["variants"] = json!([{"sku": "imp-1-A"}]);
    let mut unknown_field = product("imp-9", "Bowl", "Mesa", "cat-kitchen", 900, "");
    unknown_field["colour"] = json!("red");
    // Every field within its bounds, the whole larger than a product may be (its store item and
    // event would not fit): refused by number, and the lines after it go on.
    let mut too_large = product("imp-10", "Rack", "Mesa", "cat-kitchen", 900, "");
    too_large["variants"] = (0..48)
        .map(|i| {
            let attributes: serde_json::Map<String, Value> =
                (0..20).map(|a| (format!("a{a}"), json!("y".repeat(150)))).collect();
            json!({"sku": format!("RACK-{i}"), "attributes": attributes})
        })
        .collect();
    let mut after = product("imp-11", "Tray", "Mesa", "cat-kitchen", 700, "");
    after["variants"] = json!([{"sku": "TRAY-1"}]);
    let body = format!(
        "{good}\n{{\"name\": \n[1, 2]\n{unknown_category}\n{negative}\n{no_id}\n\n{taken_sku}\n{unknown_field}\n{too_large}\n{after}\n"
    );
    let response = import(&app, &admin, body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["failed_total"], 7, "{report}");
    let failed: Vec<u64> = report["failed"].as_array().unwrap().iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(failed, [2, 3, 4, 5, 8, 9, 10], "{report}");
    let reason = |line: u64| {
        report["failed"].as_array().unwrap().iter().find(|f| f["line"] == line).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(reason(2).contains("invalid JSON"), "{}", reason(2));
    assert!(reason(4).contains("category_id"), "{}", reason(4));
    assert!(reason(5).contains("price.amount"), "{}", reason(5));
    assert!(reason(8).contains("imp-1-A"), "{}", reason(8));
    assert!(reason(9).contains("colour"), "{}", reason(9));
    assert!(reason(10).contains("product: the product is") && reason(10).contains("131072"), "{}", reason(10));
    assert_eq!(read_status(&app, "imp-11").await, 200, "the line after a refused one is imported");

    let read = |id: &str| app.request(Method::GET, &format!("/v1/products/{id}")).send();
    assert_eq!(read("imp-1").await.unwrap().status(), 200);
    for refused in ["imp-4", "imp-5", "imp-8", "imp-9", "imp-10"] {
        assert_eq!(read(refused).await.unwrap().status(), 404, "{refused} was not half-written");
    }
    app.eventually("the import is indexed", || async { total(&app, "").await == 3 }).await;

    // Importing a line again replaces the product under its id.
    let mut renamed = good.clone();
    renamed["name"] = json!("Gooseneck Kettle");
    let report: Value = import(&app, &admin, ndjson(&[renamed])).await.json().await.unwrap();
    assert_eq!(report["imported"], 1);
    let kettle: Value = read("imp-1").await.unwrap().json().await.unwrap();
    assert_eq!(kettle["name"], "Gooseneck Kettle");
    app.eventually("the rename is indexed", || async { total(&app, "q=gooseneck").await == 1 }).await;
    assert_eq!(total(&app, "").await, 3, "replaced, not added");

    // Only NDJSON, only admins.
    let response =
        app.request(Method::POST, "/admin/v1/products/import").bearer_auth(&admin).json(&good).send().await.unwrap();
    assert_eq!(response.status(), 415);
    let customer = app.customer_token().await;
    assert_eq!(import(&app, &customer, ndjson(std::slice::from_ref(&good))).await.status(), 403);
    let anonymous = app
        .request(Method::POST, "/admin/v1/products/import")
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&[good]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

/// An image of `width` × `height` in `format`.
fn encoded(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 30) as u8, (y * 50) as u8, 120]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A photo-sized JPEG of noise (which does not compress), at full quality.
fn noisy_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let pixels = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100).encode_image(&pixels).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn an_admin_gets_an_upload_url_for_a_product_image_and_the_image_is_served() {
    let app = TestApp::start().await;
    let admin = imported_catalog(&app).await;
    let ask = |id: &str, body: Value, token: &str| {
        app.request(Method::POST, &format!("/admin/v1/products/{id}/images")).bearer_auth(token).json(&body).send()
    };
    // A real image with a page hidden after it: published as the service writes it again.
    let mut png = encoded(8, 5, image::ImageFormat::Png);
    png.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let response = ask("p-1", json!({"content_type": "image/png", "size": png.len()}), &admin).await.unwrap();
    assert_eq!(response.status(), 201);
    let upload: Value = response.json().await.unwrap();
    let url = upload["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(".png"), "{url}");
    assert_eq!(upload["upload"]["method"], "PUT");
    assert_eq!(upload["upload"]["public_url"], url.as_str());
    let send = |upload: &Value, content_type: &'static str, body: Vec<u8>| {
        app.client.put(upload["upload"]["url"].as_str().unwrap()).header("content-type", content_type).body(body).send()
    };
    let complete =
        |upload: &Value| app.request(Method::POST, upload["complete"].as_str().unwrap()).bearer_auth(&admin).send();
    let put = send(&upload, "image/png", png.clone()).await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    // Uploaded, not yet checked: neither served nor listed.
    assert!(!app.client.get(&url).send().await.unwrap().status().is_success(), "not public before it is checked");
    let product: Value = app.request(Method::GET, "/v1/products/p-1").send().await.unwrap().json().await.unwrap();
    assert_eq!(product["images"], json!([]));
    let published = complete(&upload).await.unwrap();
    assert_eq!(published.status(), 200);
    assert_eq!(published.json::<Value>().await.unwrap()["url"], url.as_str());
    assert_eq!(complete(&upload).await.unwrap().status(), 200, "completing again answers the same");
    let served = app.client.get(&url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    if url.starts_with(&app.base) {
        // Served by the platform (on AWS, CloudFront's response headers policy says the same).
        assert_eq!(served.headers()["x-content-type-options"], "nosniff", "the browser may not guess the type");
    }
    let served = served.bytes().await.unwrap();
    assert_ne!(served.as_ref(), &png[..], "never the uploaded bytes");
    assert!(!served.windows(7).any(|w| w == b"<script"), "what hid after the image is gone");
    let decoded = image::load_from_memory_with_format(&served, image::ImageFormat::Png).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (8, 5));
    // Its resized copies for the storefront's srcset lie beside it (a small image is not enlarged).
    for copy in ["thumb", "card", "full"] {
        let copy_url = format!("{}.{copy}.jpg", url.trim_end_matches(".png"));
        let served = app.client.get(&copy_url).send().await.unwrap();
        assert_eq!(served.status(), 200, "{copy_url}");
        let bytes = served.bytes().await.unwrap();
        let copy = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((copy.width(), copy.height()), (8, 5));
    }

    let product: Value = app.request(Method::GET, "/v1/products/p-1").send().await.unwrap().json().await.unwrap();
    assert_eq!(product["images"], json!([url.clone()]));
    app.eventually("the image reaches search results", || async {
        search(&app, "q=trail").await["items"][0]["image"] == json!(url)
    })
    .await;

    // A page uploaded as an image: refused when checked, deleted, never served.
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let response = ask("p-2", json!({"content_type": "image/png", "size": html.len()}), &admin).await.unwrap();
    let upload: Value = response.json().await.unwrap();
    assert!(send(&upload, "image/png", html).await.unwrap().status().is_success());
    let refused = complete(&upload).await.unwrap();
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "image", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("not an image"), "{problem}");
    assert_eq!(complete(&upload).await.unwrap().status(), 404, "the upload was deleted");
    assert!(!app.client.get(upload["url"].as_str().unwrap()).send().await.unwrap().status().is_success());

    // An image's first bytes with no image behind them: refused when decoded, deleted.
    let header: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 24]].concat();
    let response = ask("p-2", json!({"content_type": "image/png", "size": header.len()}), &admin).await.unwrap();
    let upload: Value = response.json().await.unwrap();
    assert!(send(&upload, "image/png", header).await.unwrap().status().is_success());
    let refused: Value = complete(&upload).await.unwrap().json().await.unwrap();
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains("not a whole image/png image"), "{refused}");
    assert_eq!(complete(&upload).await.unwrap().status(), 404, "the upload was deleted");

    // More bytes than declared: refused and deleted before being read.
    let response = ask("p-2", json!({"content_type": "image/png", "size": 16}), &admin).await.unwrap();
    let upload: Value = response.json().await.unwrap();
    assert!(send(&upload, "image/png", png.repeat(4)).await.unwrap().status().is_success());
    assert_eq!(complete(&upload).await.unwrap().status(), 413);
    assert_eq!(complete(&upload).await.unwrap().status(), 404, "the upload was deleted");

    // Images larger than the API's JSON body limit upload too (the upload route sets its own).
    let jpeg = noisy_jpeg(1_000, 1_000);
    assert!(jpeg.len() > 1024 * 1024, "{} bytes", jpeg.len());
    let response = ask("p-2", json!({"content_type": "image/jpeg", "size": jpeg.len()}), &admin).await.unwrap();
    let upload: Value = response.json().await.unwrap();
    let put = send(&upload, "image/jpeg", jpeg).await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(complete(&upload).await.unwrap().status(), 200);

    for (body, field) in [
        (json!({"content_type": "text/html", "size": 10}), "content_type"),
        (json!({"content_type": "image/jpeg", "size": 50 * 1024 * 1024}), "size"),
        (json!({"content_type": "image/jpeg", "size": 0}), "size"),
    ] {
        let response = ask("p-1", body, &admin).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["field"], field);
    }
    let response = ask("nope", json!({"content_type": "image/png", "size": 4}), &admin).await.unwrap();
    assert_eq!(response.status(), 404);
    let customer = app.customer_token().await;
    let response = ask("p-1", json!({"content_type": "image/png", "size": 4}), &customer).await.unwrap();
    assert_eq!(response.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn the_index_agrees_with_the_store_after_a_burst_of_changes() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let categories = ["cat-shoes", "cat-audio", "cat-kitchen", "cat-laptops"];
    let creates = (0..24).map(|i| {
        let body = json!({"name": format!("Burst Item {i}"), "brand": format!("Brand {}", i % 3),
            "category_id": categories[i % 4], "price": {"amount": 1_000 + i * 100, "currency": "USD"},
            "variants": [{"sku": format!("BURST-{i}")}]});
        let request = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send();
        async move { request.await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned() }
    });
    let ids: Vec<String> = futures::future::join_all(creates).await;
    let changes = ids.iter().enumerate().map(|(i, id)| {
        let admin = admin.clone();
        let app = &app;
        async move {
            match i % 4 {
                0 => {
                    let response = app
                        .request(Method::DELETE, &format!("/admin/v1/products/{id}"))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 204);
                }
                1 => {
                    let body =
                        json!({"name": format!("Renamed {i}"), "price": {"amount": 50_000 + i, "currency": "USD"}});
                    let response = app
                        .request(Method::PATCH, &format!("/admin/v1/products/{id}"))
                        .bearer_auth(&admin)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
                2 => app.set_stock(&admin, &format!("BURST-{i}"), 3).await,
                _ => {
                    let body = json!({"category_id": "cat-outdoor", "brand": "Moved"});
                    let response = app
                        .request(Method::PATCH, &format!("/admin/v1/products/{id}"))
                        .bearer_auth(&admin)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            }
        }
    });
    futures::future::join_all(changes).await;

    // Once the index has caught up, it holds exactly the store's products, each as the store has it
    // (stock status included: the indexer records it in the store as it applies stock events, so
    // the store itself shows the six restocked products in stock only once those events arrived;
    // agreeing before that proves nothing).
    let store_view = || async {
        let mut products = BTreeMap::new();
        for id in &ids {
            let response = app.request(Method::GET, &format!("/v1/products/{id}")).send().await.unwrap();
            if response.status() == 200 {
                let p: Value = response.json().await.unwrap();
                let summary = json!({"id": p["id"], "name": p["name"], "brand": p["brand"],
                    "category_id": p["category_id"], "price": p["price"], "image": null, "in_stock": p["in_stock"]});
                products.insert(id.clone(), summary);
            }
        }
        products
    };
    app.eventually("the index agrees with the store", || async {
        let expected = store_view().await;
        let page = search(&app, "limit=100").await;
        let indexed: BTreeMap<String, Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_owned(), i.clone()))
            .collect();
        let stocked = expected.values().filter(|p| p["in_stock"] == true).count();
        expected.len() == 18 && stocked == 6 && indexed == expected
    })
    .await;
    assert_eq!(total(&app, "category=cat-outdoor").await, 6);
    assert_eq!(total(&app, "in_stock=true").await, 6);
    assert_eq!(total(&app, "q=renamed").await, 6);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_grows_the_category_tree_and_its_products_are_found_under_their_ancestors() {
    let app = TestApp::start().await;
    let admin = imported_catalog(&app).await;
    let create = |body: Value| app.request(Method::POST, "/admin/v1/categories").bearer_auth(&admin).json(&body).send();
    let response = create(json!({"name": "Winter Boots", "parent_id": "cat-shoes"})).await.unwrap();
    assert_eq!(response.status(), 201);
    let boots: Value = response.json().await.unwrap();
    assert_eq!(
        boots,
        json!({"id": "cat-winter-boots", "name": "Winter Boots", "parent_id": "cat-shoes", "slug": "winter-boots"})
    );
    let tree: Value = app.request(Method::GET, "/v1/categories").send().await.unwrap().json().await.unwrap();
    assert!(tree["items"].as_array().unwrap().contains(&boots));

    let mut boot = product("wb-1", "Snow Boot", "Northwind", "cat-winter-boots", 13_900, "Warm to minus thirty.");
    boot.as_object_mut().unwrap().remove("id");
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&boot).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.eventually("the boot is indexed", || async { total(&app, "").await == 9 }).await;
    assert_eq!(total(&app, "category=winter-boots").await, 1);
    assert_eq!(total(&app, "category=cat-shoes").await, 4, "found under its parent");
    assert_eq!(total(&app, "category=fashion").await, 4, "and its grandparent");

    for (body, status, field) in [
        (json!({"name": "Winter Boots"}), 409, None),
        (json!({"name": "Sandals", "parent_id": "cat-nope"}), 422, Some("parent_id")),
        (json!({"name": "Sandals", "slug": "Not A Slug"}), 422, Some("slug")),
        (json!({"name": ""}), 422, Some("name")),
    ] {
        let response = create(body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        if let Some(field) = field {
            assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["field"], field, "{body}");
        }
    }
    let customer = app.customer_token().await;
    let response = app
        .request(Method::POST, "/admin/v1/categories")
        .bearer_auth(&customer)
        .json(&json!({"name": "Hats"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn the_catalog_runs_on_dynamodb_with_the_same_behaviour() {
    let Some(endpoint) = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT") else { return };
    let prefix = format!("e2e-{}-", std::process::id());
    let app = TestApp::start_with(|config| {
        config.store_backend = platform::config::StoreBackend::Dynamodb;
        config.aws_endpoint_url = Some(endpoint.parse().unwrap());
        config.dynamodb_table_prefix = prefix;
    })
    .await;
    let admin = imported_catalog(&app).await;
    assert_eq!(total(&app, "category=cat-electronics&q=headphones").await, 2);
    let product: Value = app.request(Method::GET, "/v1/products/p-3").send().await.unwrap().json().await.unwrap();
    assert_eq!(product["name"], "Leather Hiking Boot");
    app.set_stock(&admin, "p-3-A", 2).await;
    app.eventually("stock reaches the index", || async { total(&app, "in_stock=true").await == 1 }).await;
    let moved = app
        .request(Method::PATCH, "/admin/v1/products/p-3")
        .bearer_auth(&admin)
        .json(&json!({"category_id": "cat-outdoor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    assert_eq!(moved.json::<Value>().await.unwrap()["in_stock"], true);
    app.eventually("the move reaches the index", || async { total(&app, "category=outdoor").await == 2 }).await;
    app.stop().await;
}

#[tokio::test]
async fn an_import_over_the_bulk_limit_is_refused_whole() {
    let app = TestApp::start_with(|config| {
        config.set("bulk_body_limit_bytes", 2_000);
    })
    .await;
    let admin = app.admin_token().await;
    let body = ndjson(&catalog());
    assert!(body.len() > 2_000);
    let response = import(&app, &admin, body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(response.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("2000"));
    assert_eq!(total(&app, "").await, 0, "nothing was imported");
    app.stop().await;
}
