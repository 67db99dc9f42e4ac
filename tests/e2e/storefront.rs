//! The storefront: the pages a browser gets, rendered on the server from what the services hold.

use reqwest::Method;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use serde_json::{Value, json};
use shop_tests::{TestApp, unique};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn page(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = app.request(Method::GET, path).header(ACCEPT, HTML).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// The `href`s of `html` that start with `prefix`.
fn links<'a>(html: &'a str, prefix: &str) -> Vec<&'a str> {
    html.match_indices(&format!("href=\"{prefix}"))
        .map(|(i, _)| {
            let rest = &html[i + 6..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn a_shopper_browses_a_category_filters_it_searches_and_opens_a_product() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let slug = unique("lamps").to_lowercase().replace('_', "-");
    let category = json!({"name": "Lamps <b>& lights</b>", "slug": slug});
    let made =
        app.request(Method::POST, "/admin/v1/categories").bearer_auth(&admin).json(&category).send().await.unwrap();
    assert_eq!(made.status(), 201);
    let category: Value = made.json().await.unwrap();
    let sku = |n: u32| format!("{}-{n}", slug.to_uppercase());
    let products = [
        ("Arc Floor Lamp <script>alert(1)</script>", "Lumo", 4_500, vec![("Black", 6_500), ("Brass", 7_000)]),
        ("Desk Lamp", "Lumo", 2_500, vec![("White", 2_500)]),
        ("Reading Light", "Brightline", 12_000, vec![("Grey", 12_000)]),
    ];
    let mut n = 0;
    let mut ids = Vec::new();
    for (name, brand, price, variants) in &products {
        let variants: Vec<Value> = variants
            .iter()
            .map(|(colour, amount)| {
                n += 1;
                json!({"sku": sku(n), "price": {"amount": amount, "currency": "USD"}, "attributes": {"colour": colour}})
            })
            .collect();
        let body = json!({"name": name, "brand": brand, "category_id": category["id"], "description": "Warm light.\n\nA second paragraph.",
            "price": {"amount": price, "currency": "USD"}, "variants": variants, "attributes": {"bulb": "E27"}});
        let created =
            app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(created.status(), 201);
        ids.push(created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    // The brass arc lamp is sold out; everything else is on the shelf.
    for k in [1, 3, 4] {
        app.set_stock(&admin, &sku(k), 20).await;
    }
    app.set_stock(&admin, &sku(2), 0).await;
    let api = format!("/v1/products?category={slug}&in_stock=true");
    app.eventually("the lamps are indexed with their stock", || async {
        let listing: Value = app.request(Method::GET, &api).send().await.unwrap().json().await.unwrap();
        listing["total"] == 3
    })
    .await;

    // The category page: its name escaped, its products, facets, public caching with an ETag.
    let path = format!("/c/{slug}");
    let (status, headers, html) = page(&app, &path).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(headers[CACHE_CONTROL].to_str().unwrap().starts_with("public"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(html.contains("<h1>Lamps &#60;b&#62;&#38; lights&#60;/b&#62;</h1>"), "{html}");
    assert!(html.contains("3 products"));
    assert!(!html.contains("<script>alert"), "a product's name is text, never markup");
    assert_eq!(links(&html, "/p/").len(), 3, "{html}");
    assert!(html.contains(&format!(r#"<link rel="canonical" href="/c/{slug}">"#)));
    let tag = headers[ETAG].clone();
    let again = app.request(Method::GET, &path).header(ACCEPT, HTML).header(IF_NONE_MATCH, tag).send().await.unwrap();
    assert_eq!(again.status(), 304, "unchanged: not sent again");

    // A brand facet narrows it, and its link takes the filter off again.
    let lumo = links(&html, &format!("/c/{slug}?brand=Lumo"));
    assert_eq!(lumo.len(), 1, "{html}");
    let (status, _, filtered) = page(&app, &lumo[0].replace("&amp;", "&")).await;
    assert_eq!(status, 200);
    assert!(filtered.contains("2 products"), "{filtered}");
    assert!(
        filtered.contains(r#"<meta name="robots" content="noindex, follow">"#),
        "filtered pages stay out of indexes"
    );
    assert!(links(&filtered, &path).iter().any(|l| *l == path || l.starts_with(&format!("{path}?sort"))));
    let (_, _, sorted) = page(&app, &format!("{path}?sort=price_desc")).await;
    let order: Vec<usize> =
        ["Reading Light", "Arc Floor Lamp", "Desk Lamp"].iter().map(|n| sorted.find(n).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "dearest first");

    // Search, with a typo.
    let (status, headers, found) = page(&app, "/search?q=redaing+light").await;
    assert_eq!(status, 200);
    assert!(found.contains("Reading Light"), "{found}");
    assert!(found.contains("Did you mean <a href=\"/search?q=reading%20light\">reading light</a>?"), "{found}");
    assert!(headers[CACHE_CONTROL].to_str().unwrap().starts_with("public"));
    let (_, _, nothing) = page(&app, &format!("/search?q=zzqx{}", slug.replace('-', ""))).await;
    assert!(nothing.contains("No products match"), "{nothing}");

    // Suggestions as one types: the last word only begun; none for a single letter.
    let answer = app.request(Method::GET, "/search/suggest?q=reading+lig").send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()[CACHE_CONTROL], "public, max-age=60");
    let suggested: Value = answer.json().await.unwrap();
    let reading = links(&html, "/p/").into_iter().find(|l| l.ends_with(&ids[2])).unwrap().to_owned();
    assert!(
        suggested["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "Reading Light" && i["href"] == reading.as_str() && i["price"] == "$120.00"),
        "{suggested}"
    );
    let one: Value = app.request(Method::GET, "/search/suggest?q=r").send().await.unwrap().json().await.unwrap();
    assert_eq!(one, json!({"items": []}));

    // The product page: variants with their price and stock, JSON-LD, breadcrumbs to the category.
    let arc = links(&html, "/p/").into_iter().find(|l| l.ends_with(&ids[0])).unwrap().to_owned();
    assert!(arc.starts_with("/p/arc-floor-lamp-script-alert-1-script-"), "{arc}");
    let (status, _, product) = page(&app, &arc).await;
    assert_eq!(status, 200, "{product}");
    assert!(product.contains("From $65.00"), "the cheaper variant's price");
    assert!(product.contains("Brass") && product.contains("Out of stock"));
    assert!(product.contains(r#"<script type="application/ld+json">"#));
    assert!(!product.contains("<script>alert"));
    assert!(product.contains(&format!(r#"href="/c/{slug}""#)), "breadcrumbs");
    assert!(product.contains("<th scope=\"row\">Bulb</th><td>E27</td>"), "{product}");
    // An old or wrong slug moves to the product's own address; an unknown product is a page too.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let moved = client.get(format!("{}/p/old-name-{}", app.base, ids[0])).header(ACCEPT, HTML).send().await.unwrap();
    assert_eq!(moved.status(), 308);
    assert_eq!(moved.headers()[LOCATION], arc.as_str());
    let (status, headers, missing) = page(&app, "/p/no-such-thing-0000").await;
    assert_eq!((status, &headers[CONTENT_TYPE]), (404, &"text/html; charset=utf-8".parse().unwrap()));
    assert!(missing.contains("couldn") && missing.contains("<a class=\"button\" href=\"/\">"), "{missing}");

    // The stylesheet and the page script are in the page (their hashes in the policy, no other
    // inline script allowed); the other files are named by their content and cached for a year.
    assert!(html.contains("<style>/*") && html.contains("--accent:"), "the stylesheet inline");
    assert!(csp.contains("style-src 'self' 'sha256-"), "{csp}");
    assert!(html.contains("<script>// Enhancements only") && !html.contains("<script src="), "the script inline");
    assert!(csp.contains("script-src 'self' 'sha256-") && !csp.contains("unsafe-inline'; object"), "{csp}");
    let icon = html.split("<link rel=\"icon\" href=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(icon.starts_with("/static/icon."), "{icon}");
    let response = app.request(Method::GET, &icon).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");
    app.stop().await;
}

#[tokio::test]
async fn browsers_get_pages_for_unknown_paths_and_api_clients_get_problems() {
    let app = TestApp::start().await;
    let (status, headers, html) = page(&app, "/no/such/page").await;
    assert_eq!(status, 404);
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(html.contains("<h1>We couldn"), "{html}");
    let api = app.request(Method::GET, "/no/such/page").header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(api.headers()[CONTENT_TYPE], "application/problem+json");
    let (status, headers, _) = page(&app, "/c/no-such-category").await;
    assert_eq!((status, headers[CACHE_CONTROL].to_str().unwrap()), (404, "no-store"));
    let robots = app.request(Method::GET, "/robots.txt").send().await.unwrap();
    assert_eq!(robots.status(), 200);
    assert!(robots.text().await.unwrap().contains("Disallow: /checkout"));
    app.stop().await;
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The `Set-Cookie` value of cookie `name` in `headers` (its `name=value` part).
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_shopper_fills_a_cart_from_a_product_page_changes_it_and_enters_a_code() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let sku = unique("MUG").to_uppercase();
    let body = json!({"name": "Stoneware Mug", "brand": "Kiln", "category_id": "cat-kitchen", "description": "Holds tea.",
        "price": {"amount": 1_800, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(&admin, &sku, 10).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |path: &str, cookies: &str, form: &[(&str, &str)]| {
        client
            .post(format!("{}{path}", app.base))
            .header("origin", &app.base)
            .header("sec-fetch-site", "same-origin")
            .header(reqwest::header::COOKIE, cookies.to_owned())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(form))
    };

    // Added from the product page's form: the cart is made and kept in a cookie.
    let added = post("/cart/lines", "", &[("sku", sku.as_str()), ("quantity", "2")]).send().await.unwrap();
    assert_eq!(added.status(), 303);
    assert_eq!(added.headers()[LOCATION], "/cart");
    let cart_cookie = set_cookie(added.headers(), "shop_cart").expect("the cart's cookie");
    assert_eq!(
        set_cookie(added.headers(), "shop_cart_count").as_deref(),
        Some("shop_cart_count=2"),
        "the header's count"
    );
    let cart_set = added
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .find(|v| v.to_str().unwrap().starts_with("shop_cart="));
    assert!(cart_set.unwrap().to_str().unwrap().contains("HttpOnly; SameSite=Lax"));
    let cart =
        client.get(format!("{}/cart", app.base)).header(reqwest::header::COOKIE, &cart_cookie).send().await.unwrap();
    assert_eq!(cart.status(), 200);
    assert_eq!(cart.headers()[CACHE_CONTROL], "private, no-store");
    let csrf_cookie = set_cookie(cart.headers(), "shop_csrf").expect("a form token for the visitor");
    let html = cart.text().await.unwrap();
    assert!(html.contains("Stoneware Mug") && html.contains("$36.00"), "{html}");
    let token = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(csrf_cookie, format!("shop_csrf={token}"));
    let cookies = format!("{cart_cookie}; {csrf_cookie}");

    // Adding the same SKU again adds to the line; a quantity change sets it.
    assert_eq!(
        post("/cart/lines", &cookies, &[("sku", sku.as_str()), ("quantity", "1")]).send().await.unwrap().status(),
        303
    );
    let page = |cookies: String| {
        let client = client.clone();
        let url = format!("{}/cart", app.base);
        async move { client.get(url).header(reqwest::header::COOKIE, cookies).send().await.unwrap().text().await.unwrap() }
    };
    assert!(page(cookies.clone()).await.contains(r#"value="3""#));
    let changed = post("/cart/update", &cookies, &[("csrf", token.as_str()), ("sku", sku.as_str()), ("quantity", "4")])
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 303);
    assert!(page(cookies.clone()).await.contains("$72.00"));

    // A code the shop does not have: the cart again, with the reason by the field.
    let refused =
        post("/cart/codes", &cookies, &[("csrf", token.as_str()), ("code", "NOSUCHCODE")]).send().await.unwrap();
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains(r#"<p id="code-error" class="field-error">NOSUCHCODE is not a code of ours.</p>"#), "{html}");
    assert!(html.contains(r#"value="NOSUCHCODE""#), "what was typed is kept");

    // Posts from another site, or with another visitor's token, change nothing.
    let cross = client
        .post(format!("{}/cart/update", app.base))
        .header("sec-fetch-site", "cross-site")
        .header(reqwest::header::COOKIE, &cookies)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", token.as_str()), ("sku", sku.as_str()), ("quantity", "0")]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.text().await.unwrap().contains("That form has expired"));
    let silent = client
        .post(format!("{}/cart/update", app.base))
        .header(reqwest::header::COOKIE, &cookies)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", "0".repeat(64).as_str()), ("sku", sku.as_str()), ("quantity", "0")]))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 403);
    assert!(page(cookies.clone()).await.contains("$72.00"), "still four mugs");

    // A bad quantity is explained; removing the line empties the cart.
    let bad = post("/cart/update", &cookies, &[("csrf", token.as_str()), ("sku", sku.as_str()), ("quantity", "lots")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("Enter a quantity from 0 to 99."));
    let removed = post("/cart/update", &cookies, &[("csrf", token.as_str()), ("sku", sku.as_str()), ("quantity", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 303);
    assert!(page(cookies.clone()).await.contains("Your cart is empty."));

    // An old cart cookie (a cart that is gone) is an empty cart, not an error.
    let gone = page("shop_cart=0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into()).await;
    assert!(gone.contains("Your cart is empty."));
    app.stop().await;
}

/// A browser without scripts, keeping the shop's cookies: enough to walk the storefront's forms.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: app.base.clone(), cookies: Default::default() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let response = self
            .client
            .get(url)
            .header(ACCEPT, HTML)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts `form` from one of the shop's pages; the status and where it redirects (or its page).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("sec-fetch-site", "same-origin")
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .unwrap();
        self.keep(&response);
        let status = response.status().as_u16();
        match response.headers().get(LOCATION) {
            Some(location) => (status, location.to_str().unwrap().to_owned()),
            None => (status, response.text().await.unwrap()),
        }
    }
}

impl Browser {
    /// Creates an account through the registration form: the status and where it redirects (or
    /// the page, when refused).
    async fn register(&mut self, name: &str, email: &str, password: &str) -> (u16, String) {
        let (_, form) = self.get("/account/register").await;
        let csrf = hidden(&form, "csrf");
        self.post("/account/register", &[("csrf", &csrf), ("name", name), ("email", email), ("password", password)])
            .await
    }

    /// Signs in through the sign-in form, to go to `next`: the status and where it redirects (or
    /// the page, when refused).
    async fn sign_in(&mut self, email: &str, password: &str, next: &str) -> (u16, String) {
        let (_, form) = self.get("/account/sign-in").await;
        let csrf = hidden(&form, "csrf");
        self.post("/account/sign-in", &[("csrf", &csrf), ("email", email), ("password", password), ("next", next)])
            .await
    }
}

/// The value of hidden field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_guest_checks_out_in_the_browser_is_declined_pays_another_way_and_follows_the_order() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let sku = unique("KETTLE").to_uppercase();
    let body = json!({"name": "Copper Kettle", "brand": "Kiln", "category_id": "cat-kitchen", "description": "Whistles.",
        "price": {"amount": 4_000, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(&admin, &sku, 10).await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.post("/cart/lines", &[("sku", &sku), ("quantity", "1")]).await.0, 303);
    let (status, checkout) = browser.get("/checkout").await;
    assert_eq!(status, 200, "{checkout}");
    assert!(checkout.contains("Place order · $40.00"), "the button says the amount");
    let (csrf, attempt) = (hidden(&checkout, "csrf"), hidden(&checkout, "attempt"));
    let email = format!("{}@example.com", unique("guest"));
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("attempt", attempt.as_str()),
        ("action", "place"),
        ("email", "not-an-email"),
        ("name", "Grace Hopper"),
        ("line1", "1 Navy Way"),
        ("city", "Arlington"),
        ("region", "VA"),
        ("postal_code", "22201"),
        ("country", "US"),
        ("payment", "pm_card_chargeDeclined"),
    ];

    // A mistake is shown by its field, with what was typed kept.
    let (status, page) = browser.post("/checkout", &form).await;
    assert_eq!(status, 422);
    assert!(
        page.contains(r#"<p id="email-error" class="field-error">Enter an email address like name@example.com.</p>"#),
        "{page}"
    );
    assert!(page.contains(r#"value="Grace Hopper""#));

    // Declined: the order fails, its page says why and leads back to checkout with the cart as it was.
    form[3] = ("email", email.as_str());
    let (status, order_url) = browser.post("/checkout", &form).await;
    assert_eq!(status, 303, "{order_url}");
    assert!(order_url.starts_with("/orders/ord_") && order_url.contains("?token="), "{order_url}");
    let page_of = |url: String| async move { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let url = format!("{}{order_url}", app.base);
    app.eventually("the payment is declined", || {
        let url = url.clone();
        async move { page_of(url).await.contains("Your payment didn") }
    })
    .await;
    let declined = page_of(url.clone()).await;
    assert!(declined.contains("Your card was declined."), "{declined}");
    let token = order_url.split("token=").nth(1).unwrap().to_owned();
    let id = order_url.trim_start_matches("/orders/").split('?').next().unwrap().to_owned();
    let (status, back) = browser.post(&format!("/orders/{id}/retry"), &[("csrf", &csrf), ("token", &token)]).await;
    assert_eq!((status, back.as_str()), (303, "/checkout?declined=generic_decline"));
    let (_, again) = browser.get(&back).await;
    assert!(again.contains("Your card was declined. Choose another way to pay; your cart is as it was."), "{again}");
    assert!(again.contains("Copper Kettle × 1"));

    // Paid with another method; posting the same attempt twice (a double click) is one order.
    let attempt = hidden(&again, "attempt");
    form[1] = ("attempt", attempt.as_str());
    form[10] = ("payment", "pm_card_visa");
    let (status, first) = browser.post("/checkout", &form).await;
    assert_eq!(status, 303);
    let (_, second) = browser.post("/checkout", &form).await;
    assert_eq!(first, second, "the same attempt, the same order");
    assert_ne!(first, order_url);
    let (status, confirmation) = browser.get(&first).await;
    assert_eq!(status, 200);
    assert!(
        confirmation.contains("Copper Kettle")
            && confirmation.contains("Grace Hopper")
            && confirmation.contains("$40.00")
    );
    app.eventually("the order ships", || {
        let url = format!("{}{first}", app.base);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap().contains("Your order is on its way") }
    })
    .await;
    // The cart emptied with the order; the order's page needs its token.
    assert!(browser.get("/cart").await.1.contains("Your cart is empty."));
    let (status, _) = browser.get(&first.replace(&first[first.find("token=").unwrap() + 6..], "wrong")).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn search_engines_get_robots_txt_and_a_sitemap_of_every_category_and_product() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let body = json!({"name": "Linen Apron", "brand": "Kiln", "category_id": "cat-kitchen", "description": "Keeps flour off.",
        "price": {"amount": 2_200, "currency": "USD"}, "variants": [{"sku": unique("APRON").to_uppercase()}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    app.eventually("the apron is indexed", || async {
        let found: Value = app.request(Method::GET, "/v1/products?q=apron").send().await.unwrap().json().await.unwrap();
        found["total"] == 1
    })
    .await;
    let shop = &app;
    let text = |path: &'static str| async move {
        let response = shop.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        (response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned(), response.text().await.unwrap())
    };
    let (_, robots) = text("/robots.txt").await;
    assert!(robots.contains("Disallow: /checkout") && robots.contains("Sitemap: http"), "{robots}");
    let (kind, index) = text("/sitemap.xml").await;
    assert_eq!(kind, "application/xml; charset=utf-8");
    assert!(index.contains("<sitemapindex") && index.contains("/sitemaps/categories.xml</loc>"), "{index}");
    assert!(index.contains("/sitemaps/products-1.xml</loc>") && !index.contains("products-2.xml"), "{index}");
    let (_, categories) = text("/sitemaps/categories.xml").await;
    assert!(categories.contains("/c/kitchen</loc>"), "{categories}");
    let (_, products) = text("/sitemaps/products-1.xml").await;
    assert!(products.contains(&format!("/p/linen-apron-{id}</loc>")), "{products}");
    let missing = app.request(Method::GET, "/sitemaps/products-2.xml").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_shopper_registers_checks_out_signed_in_finds_the_order_cancels_it_and_stays_signed_in() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let sku = unique("LAMP").to_uppercase();
    let body = json!({"name": "Paper Lamp", "brand": "Kiln", "category_id": "cat-furniture", "description": "Soft light.",
        "price": {"amount": 3_000, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(&admin, &sku, 10).await;
    let mut browser = Browser::new(&app);

    // The account page asks for a sign-in first, and comes back after.
    let (status, to) = browser.post("/account/sign-out", &[]).await;
    assert_eq!((status, to.as_str()), (303, "/"));
    let response = browser.client.get(format!("{}/account", app.base)).send().await.unwrap();
    assert_eq!(response.headers()[LOCATION], "/account/sign-in?next=%2Faccount");
    let (status, form) = browser.get("/account/register?next=/account").await;
    assert_eq!(status, 200);
    let csrf = hidden(&form, "csrf");
    let email = format!("{}@example.com", unique("shopper"));
    let (status, page) = browser
        .post(
            "/account/register",
            &[("csrf", &csrf), ("next", "/account"), ("name", "Ada"), ("email", &email), ("password", "short")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("Password must be at least 10 characters."), "{page}");
    let register = [
        ("csrf", csrf.as_str()),
        ("next", "//evil.example/"),
        ("name", "Ada Lovelace"),
        ("email", email.as_str()),
        ("password", "analytical-engine-1843"),
    ];
    let (status, to) = browser.post("/account/register", &register).await;
    assert_eq!((status, to.as_str()), (303, "/account"), "never to another site");
    assert!(browser.cookies.contains_key("shop_access") && browser.cookies.contains_key("shop_refresh"));
    let (_, account) = browser.get("/account").await;
    assert!(account.contains("Hello, Ada Lovelace") && account.contains("No orders yet"), "{account}");

    // An address saved on the account page (a bad one explained) is filled in at checkout.
    let csrf = hidden(&account, "csrf");
    let address = [
        ("csrf", csrf.as_str()),
        ("name", "Ada Lovelace"),
        ("line1", "12 St James's Square"),
        ("city", "London"),
        ("postal_code", "SW1Y 4JH"),
        ("country", "GB"),
    ];
    let (status, refused) =
        browser.post("/account/addresses", &[("csrf", csrf.as_str()), ("name", "Ada"), ("country", "GB")]).await;
    assert_eq!(status, 422);
    assert!(refused.contains(r#"id="address-error""#), "{refused}");
    assert_eq!(browser.post("/account/addresses", &address).await, (303, "/account#addresses".to_owned()));
    let (_, account) = browser.get("/account").await;
    assert!(account.contains("Ada Lovelace, 12 St James&#39;s Square, London, SW1Y 4JH, GB"), "{account}");

    // The name and the password change on the account page; a wrong current password is explained.
    assert_eq!(
        browser.post("/account/name", &[("csrf", &csrf), ("name", "Augusta Ada King")]).await,
        (303, "/account?changed=name".to_owned())
    );
    let (_, account) = browser.get("/account?changed=name").await;
    assert!(account.contains("Hello, Augusta Ada King") && account.contains("Your name is changed."), "{account}");
    let wrong = [
        ("csrf", csrf.as_str()),
        ("current_password", "not-my-password-1"),
        ("new_password", "difference-engine-1822"),
    ];
    let (status, refused) = browser.post("/account/password", &wrong).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.contains(r#"id="profile-error""#), "{refused}");
    let before = browser.cookies["shop_refresh"].clone();
    let right = [
        ("csrf", csrf.as_str()),
        ("current_password", "analytical-engine-1843"),
        ("new_password", "difference-engine-1822"),
    ];
    assert_eq!(browser.post("/account/password", &right).await, (303, "/account?changed=password".to_owned()));
    assert_ne!(browser.cookies["shop_refresh"], before, "this session goes on with new tokens");
    assert!(browser.get("/account").await.1.contains("Hello, Augusta Ada King"), "still signed in");

    // Checkout signed in: no email asked, the order is the account's.
    assert_eq!(browser.post("/cart/lines", &[("sku", &sku), ("quantity", "1")]).await.0, 303);
    let (_, checkout) = browser.get("/checkout").await;
    assert!(checkout.contains(&format!("Signed in as <strong>{email}</strong>")), "{checkout}");
    assert!(checkout.contains(r#"value="SW1Y 4JH""#), "the saved address is filled in");
    let delete = account.split("action=\"/account/addresses/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(delete.ends_with("/delete"), "{delete}");
    let (csrf, attempt) = (hidden(&checkout, "csrf"), hidden(&checkout, "attempt"));
    let form = [
        ("csrf", csrf.as_str()),
        ("attempt", attempt.as_str()),
        ("action", "place"),
        ("name", "Ada Lovelace"),
        ("line1", "12 St James's Square"),
        ("city", "London"),
        ("postal_code", "SW1Y 4JH"),
        ("country", "GB"),
        ("payment", "pm_card_visa"),
    ];
    let (status, order_path) = browser.post("/checkout", &form).await;
    assert_eq!(status, 303, "{order_path}");
    assert!(order_path.starts_with("/account/orders/ord_"), "{order_path}");
    let (_, account) = browser.get("/account").await;
    assert!(account.contains(order_path.as_str()) && account.contains("Paper Lamp × 1"), "{account}");

    // Signed in with only the refresh token (the access token lapsed): still in, with new tokens.
    let old_refresh = browser.cookies["shop_refresh"].clone();
    browser.cookies.remove("shop_access");
    let (status, order_page) = browser.get(&order_path).await;
    assert_eq!(status, 200);
    assert!(browser.cookies.contains_key("shop_access"), "a new access token");
    assert_ne!(browser.cookies["shop_refresh"], old_refresh, "the refresh token rotated");

    // Cancelled before it ships; an order that shipped already is not offered the button.
    let csrf = hidden(&order_page, "csrf");
    if !order_page.contains("Cancel order") {
        assert!(order_page.contains("Your order is on its way"), "only a shipped order has no cancel: {order_page}");
    } else {
        let (status, back) = browser.post(&format!("{order_path}/cancel"), &[("csrf", &csrf)]).await;
        match status {
            303 => {
                assert_eq!(back, order_path);
                let (_, cancelled) = browser.get(&order_path).await;
                assert!(cancelled.contains("This order was cancelled"), "{cancelled}");
            }
            _ => assert!(back.contains("role=\"alert\""), "a refusal is explained: {back}"),
        }
    }
    // A saved address is deleted from the account page.
    assert_eq!(browser.post(&format!("/account/addresses/{delete}"), &[("csrf", &csrf)]).await.0, 303);
    assert!(browser.get("/account").await.1.contains("No saved addresses yet."));
    // Someone else's order is not found; signing out ends the session.
    let mut stranger = Browser::new(&app);
    assert_eq!(stranger.get(&order_path).await.0, 303, "asked to sign in");
    let (status, _) = browser.post("/account/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(browser.cookies.get("shop_refresh").map(String::as_str), Some(""));
    app.stop().await;
}

/// The units of `sku` on a cart page, if it has that line.
fn line_quantity(cart: &str, sku: &str) -> Option<i64> {
    let line = cart.split(&format!(r#"name="sku" value="{sku}">"#)).nth(1)?;
    let field = line.split(r#"name="quantity" type="number""#).nth(1)?;
    field.split("value=\"").nth(1)?.split('"').next()?.parse().ok()
}

#[tokio::test]
async fn a_signed_in_shoppers_cart_follows_them_from_device_to_device() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (tea, cup) = (unique("TEA").to_uppercase(), unique("CUP").to_uppercase());
    let body = json!({"name": "Tea Set", "brand": "Kiln", "category_id": "cat-kitchen", "description": "For two.",
        "price": {"amount": 2_500, "currency": "USD"}, "variants": [{"sku": tea}, {"sku": cup}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(&admin, &tea, 20).await;
    app.set_stock(&admin, &cup, 20).await;

    // On the phone, a guest fills a cart, then creates an account: the cart is the account's now.
    let mut phone = Browser::new(&app);
    assert_eq!(phone.post("/cart/lines", &[("sku", &tea), ("quantity", "1")]).await.0, 303);
    assert!(!phone.cookies["shop_cart"].is_empty(), "a guest cart in the phone's cookie");
    let email = format!("{}@example.com", unique("traveller"));
    assert_eq!(phone.register("Ibn Battuta", &email, "tangier-1325-rihla").await.0, 303);
    assert_eq!(phone.cookies["shop_cart"], "", "the guest cart's cookie is gone: the cart is the account's");
    assert_eq!(phone.cookies["shop_cart_count"], "1");
    let (_, cart) = phone.get("/cart").await;
    assert_eq!(line_quantity(&cart, &tea), Some(1), "{cart}");

    // On the laptop, a guest cart of its own (the same SKU and another) joins it at sign-in.
    let mut laptop = Browser::new(&app);
    assert_eq!(laptop.post("/cart/lines", &[("sku", &tea), ("quantity", "1")]).await.0, 303);
    assert_eq!(laptop.post("/cart/lines", &[("sku", &cup), ("quantity", "2")]).await.0, 303);
    assert_eq!(laptop.sign_in(&email, "tangier-1325-rihla", "/cart").await, (303, "/cart".to_owned()));
    assert_eq!(laptop.cookies["shop_cart"], "");
    assert_eq!(laptop.cookies["shop_cart_count"], "4", "1 + 1 tea and 2 cups");
    let (_, cart) = laptop.get("/cart").await;
    assert_eq!((line_quantity(&cart, &tea), line_quantity(&cart, &cup)), (Some(2), Some(2)), "{cart}");

    // A change on one device is the cart on the other: quantities, codes, lines taken out.
    let code = unique("TRIP").to_uppercase().replace('-', "_");
    let promotion = json!({"name": "Trip", "code": code, "currency": "USD",
        "action": {"type": "order_percent", "percent_bp": 1000}});
    let created = app.request(Method::POST, "/admin/v1/promotions").bearer_auth(&admin).json(&promotion).send();
    assert_eq!(created.await.unwrap().status(), 201);
    let csrf = hidden(&cart, "csrf");
    assert_eq!(laptop.post("/cart/update", &[("csrf", &csrf), ("sku", &tea), ("quantity", "3")]).await.0, 303);
    let coded = laptop.post("/cart/codes", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(coded.0, 303, "{}", coded.1);
    let (_, cart) = phone.get("/cart").await;
    assert_eq!(line_quantity(&cart, &tea), Some(3), "{cart}");
    assert!(cart.contains(&code), "the code entered on the laptop: {cart}");
    let csrf = hidden(&cart, "csrf");
    assert_eq!(phone.post("/cart/update", &[("csrf", &csrf), ("sku", &cup), ("quantity", "0")]).await.0, 303);
    assert_eq!(phone.cookies["shop_cart_count"], "3");
    assert_eq!(line_quantity(&laptop.get("/cart").await.1, &cup), None, "taken out on the phone");

    // Signing out leaves the cart with the account, not in the browser; signing in brings it back.
    let csrf = hidden(&laptop.get("/cart").await.1, "csrf");
    assert_eq!(laptop.post("/account/sign-out", &[("csrf", &csrf)]).await.0, 303);
    assert_eq!(laptop.cookies["shop_cart_count"], "0");
    assert!(laptop.get("/cart").await.1.contains("Your cart is empty."));
    assert_eq!(laptop.sign_in(&email, "tangier-1325-rihla", "/cart").await.0, 303);
    assert_eq!(laptop.cookies["shop_cart_count"], "3", "the account's cart, counted at sign-in");

    // A guest cart still in a signed-in browser (not brought in at sign-in: the order service did
    // not answer then) joins the account's cart on the next visit.
    let guest: Value = app.request(Method::POST, "/v1/carts").send().await.unwrap().json().await.unwrap();
    let guest = guest["id"].as_str().unwrap().to_owned();
    let put = app.request(Method::PUT, &format!("/v1/carts/{guest}/items/{cup}")).json(&json!({"quantity": 1}));
    assert_eq!(put.send().await.unwrap().status(), 200);
    phone.cookies.insert("shop_cart".into(), guest);
    let (_, cart) = phone.get("/cart").await;
    assert_eq!((line_quantity(&cart, &tea), line_quantity(&cart, &cup)), (Some(3), Some(1)), "{cart}");
    assert_eq!(phone.cookies["shop_cart"], "", "brought in, and forgotten by the browser");

    // Checked out on the phone: the laptop's cart is empty too.
    let (_, checkout) = phone.get("/checkout").await;
    assert!(checkout.contains(&format!("Signed in as <strong>{email}</strong>")), "{checkout}");
    let (csrf, attempt) = (hidden(&checkout, "csrf"), hidden(&checkout, "attempt"));
    let form = [
        ("csrf", csrf.as_str()),
        ("attempt", attempt.as_str()),
        ("action", "place"),
        ("name", "Ibn Battuta"),
        ("line1", "1 Kasbah Road"),
        ("city", "Springfield"),
        ("region", "IL"),
        ("postal_code", "62701"),
        ("country", "US"),
        ("payment", "pm_card_visa"),
    ];
    let (status, order_path) = phone.post("/checkout", &form).await;
    assert_eq!(status, 303, "{order_path}");
    assert!(order_path.starts_with("/account/orders/ord_"), "{order_path}");
    assert!(laptop.get("/cart").await.1.contains("Your cart is empty."));
    let (_, account) = laptop.get("/account").await;
    assert!(account.contains(order_path.as_str()) && account.contains("Tea Set × 3, Tea Set × 1"), "{account}");
    app.stop().await;
}

#[tokio::test]
async fn a_guest_cart_too_big_to_join_the_accounts_is_kept_explained_and_joins_once_there_is_room() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let tag = unique("BIG").to_uppercase();
    let skus: Vec<String> = (0..52).map(|i| format!("{tag}-{i:02}")).collect();
    for (name, range) in [("Sock Drawer", 0..48), ("Hat Box", 48..52)] {
        let variants: Vec<Value> =
            skus[range].iter().map(|sku| json!({"sku": sku, "attributes": {"size": sku}})).collect();
        let body = json!({"name": name, "brand": "Kiln", "category_id": "cat-kitchen", "description": "Many.",
            "price": {"amount": 500, "currency": "USD"}, "variants": variants});
        let created =
            app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    }
    for sku in &skus {
        app.set_stock(&admin, sku, 5).await;
    }

    // An account whose cart holds 40 lines, and a guest cart of 12 (2 of them the same SKUs) in
    // another browser.
    let mut phone = Browser::new(&app);
    let email = format!("{}@example.com", unique("collector"));
    assert_eq!(phone.register("Sock Collector", &email, "forty-eight-pairs").await.0, 303);
    let token = phone.cookies["shop_access"].clone();
    for sku in &skus[..40] {
        let put = app.request(Method::PUT, &format!("/v1/cart/items/{sku}")).bearer_auth(&token);
        assert_eq!(put.json(&json!({"quantity": 1})).send().await.unwrap().status(), 200);
    }
    let mut laptop = Browser::new(&app);
    for sku in &skus[38..50] {
        assert_eq!(laptop.post("/cart/lines", &[("sku", sku), ("quantity", "1")]).await.0, 303);
    }
    let guest = laptop.cookies["shop_cart"].clone();

    // Together they would hold 50 lines, 2 more than a cart may: the guest cart stays in the
    // browser, and the cart page says why.
    assert_eq!(laptop.sign_in(&email, "forty-eight-pairs", "/cart").await.0, 303);
    assert_eq!(laptop.cookies["shop_cart"], guest, "kept");
    assert_eq!(laptop.cookies["shop_cart_count"], "40", "the account's cart");
    let (status, cart) = laptop.get("/cart").await;
    assert_eq!(status, 200);
    assert!(
        cart.contains(
            "The cart you filled before signing in could not be added to this one: together they would hold 50 \
             different items, and a cart takes 48. It is kept: remove some items here and it will be added."
        ),
        "{cart}"
    );
    assert_eq!(line_quantity(&cart, &skus[0]), Some(1));
    assert_eq!(line_quantity(&cart, &skus[49]), None, "not brought in");

    // Room made on the phone: the next visit brings it in (units of a SKU in both added).
    let (_, cart) = phone.get("/cart").await;
    let csrf = hidden(&cart, "csrf");
    for sku in &skus[..2] {
        assert_eq!(phone.post("/cart/update", &[("csrf", &csrf), ("sku", sku), ("quantity", "0")]).await.0, 303);
    }
    let (_, cart) = laptop.get("/cart").await;
    assert!(!cart.contains("could not be added"), "{cart}");
    assert_eq!(laptop.cookies["shop_cart"], "", "brought in, and forgotten by the browser");
    assert_eq!((line_quantity(&cart, &skus[39]), line_quantity(&cart, &skus[49])), (Some(2), Some(1)), "{cart}");
    assert_eq!(line_quantity(&cart, &skus[0]), None);
    assert_eq!(laptop.cookies["shop_cart_count"], "50", "38 units kept and the guest's 12");
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_told_apart_from_too_many_attempts() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let (_, form) = browser.get("/account/sign-in").await;
    let csrf = hidden(&form, "csrf");
    let email = format!("{}@example.com", unique("nobody"));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, page) = browser
            .post("/account/sign-in", &[("csrf", &csrf), ("email", &email), ("password", "wrong-password-1")])
            .await;
        match status {
            401 => assert!(page.contains("That email and password don&#39;t match an account."), "{page}"),
            429 => assert!(page.contains("Too many attempts"), "{page}"),
            other => panic!("{other}: {page}"),
        }
        statuses.push(status);
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "the throttle counts this shopper's attempts: {statuses:?}");
    app.stop().await;
}

/// The token of the link to `page` in the newest email to `to` about `subject`.
async fn mailed_link_token(app: &TestApp, to: &str, subject: &str, page: &str) -> String {
    for _ in 0..500 {
        let mails = app.mails_to(to).await;
        if let Some(mail) = mails.iter().find(|m| m.contains(subject)) {
            let at =
                mail.find(&format!("{page}?token=")).unwrap_or_else(|| panic!("{page} in {mail}")) + page.len() + 7;
            return mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no email to {to} about {subject:?}");
}

#[tokio::test]
async fn a_shopper_confirms_their_email_and_resets_a_forgotten_password_from_the_links_mailed() {
    let app = TestApp::start().await;
    let mut browser = Browser::new(&app);
    let email = format!("{}@example.com", unique("forgetful"));
    assert_eq!(browser.register("Alan", &email, "turing-machine-1936").await.0, 303);
    let csrf = browser.cookies["shop_csrf"].clone(); // the forms' token is the visitor's cookie

    // The confirmation link opens a page whose button confirms (opening the link alone does not).
    let token = mailed_link_token(&app, &email, "Confirm your email", "/account/verify").await;
    let (status, page) = browser.get(&format!("/account/verify?token={token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Confirm my email"));
    let (status, done) = browser.post("/account/verify", &[("csrf", &csrf), ("token", &token)]).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("your email is confirmed"));
    let (status, _) = browser.post("/account/verify", &[("csrf", &csrf), ("token", &token)]).await;
    assert_eq!(status, 200, "confirming twice is still confirmed");
    let (status, bogus) = browser.post("/account/verify", &[("csrf", &csrf), ("token", "v1.not-a-token")]).await;
    assert_eq!(status, 422);
    assert!(bogus.contains("expired or was used already"));

    // Forgotten: the reset page asks for the email, the same answer whether or not it has an account.
    let (status, _) = browser.get("/account/reset").await;
    assert_eq!(status, 200);
    let (status, sent) = browser.post("/account/reset", &[("csrf", &csrf), ("email", &email)]).await;
    assert_eq!(status, 200);
    assert!(sent.contains("Check your email"), "{sent}");
    let (_, nobody) = browser.post("/account/reset", &[("csrf", &csrf), ("email", "no-one-here@example.com")]).await;
    assert!(nobody.contains("Check your email"), "no account is revealed");
    let token = mailed_link_token(&app, &email, "Reset your password", "/account/reset").await;
    let (_, choose) = browser.get(&format!("/account/reset?token={token}")).await;
    assert!(choose.contains("Choose a new password") && choose.contains(&token));
    let (status, weak) =
        browser.post("/account/reset/confirm", &[("csrf", &csrf), ("token", &token), ("password", "short")]).await;
    assert_eq!(status, 422);
    assert!(weak.contains("10 characters"), "{weak}");
    let (status, changed) = browser
        .post("/account/reset/confirm", &[("csrf", &csrf), ("token", &token), ("password", "enigma-broken-1941")])
        .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed.contains("Password changed"));
    let (status, used) = browser
        .post("/account/reset/confirm", &[("csrf", &csrf), ("token", &token), ("password", "another-one-1942")])
        .await;
    assert_eq!(status, 422);
    assert!(used.contains("expired or was used already"));

    // The old password no longer signs in; the new one does.
    let mut fresh = Browser::new(&app);
    let (_, form) = fresh.get("/account/sign-in").await;
    let csrf = hidden(&form, "csrf");
    let old = [("csrf", csrf.as_str()), ("email", email.as_str()), ("password", "turing-machine-1936")];
    assert_eq!(fresh.post("/account/sign-in", &old).await.0, 401);
    let new = [("csrf", csrf.as_str()), ("email", email.as_str()), ("password", "enigma-broken-1941")];
    assert_eq!(fresh.post("/account/sign-in", &new).await, (303, "/account".to_owned()));
    app.stop().await;
}

#[tokio::test]
async fn with_a_stripe_key_the_checkout_collects_cards_with_stripes_payment_element() {
    let app = TestApp::start_with(|config| {
        config.set("stripe_publishable_key", "pk_test_e2e");
    })
    .await;
    if !app.is_local() {
        // The fleet's web tier has no publishable key; its checkout is tested above.
        return app.stop().await;
    }
    let admin = app.admin_token().await;
    let sku = unique("MUG").to_uppercase();
    let body = json!({"name": "Stoneware Mug", "brand": "Kiln", "category_id": "cat-kitchen", "description": "Holds tea.",
        "price": {"amount": 1_800, "currency": "USD"}, "variants": [{"sku": sku}]});
    let created = app.request(Method::POST, "/admin/v1/products").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    app.set_stock(&admin, &sku, 5).await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.post("/cart/lines", &[("sku", &sku), ("quantity", "2")]).await.0, 303);

    // The page mounts Stripe's element with the amount, loads Stripe's script, and its policy
    // admits Stripe's script, frames and API (and only the checkout's does).
    let response = app
        .request(Method::GET, "/checkout")
        .header(ACCEPT, HTML)
        .header(reqwest::header::COOKIE, browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    browser.keep(&response);
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self' 'sha256-"), "the page script's hash: {policy}");
    for directive in [
        "' https://js.stripe.com https://*.js.stripe.com;",
        "frame-src https://js.stripe.com",
        "connect-src 'self' https://api.stripe.com",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let checkout = response.text().await.unwrap();
    assert!(checkout.contains(r#"<script src="https://js.stripe.com/v3/" defer></script>"#), "{checkout}");
    assert!(checkout.contains(r#"data-key="pk_test_e2e" data-amount="3600" data-currency="usd""#), "{checkout}");
    assert!(!checkout.contains("pm_card_visa"), "no test methods: {checkout}");
    let (_, _, cart) = page(&app, "/cart").await;
    assert!(!cart.contains("js.stripe.com"), "Stripe's script is on the checkout only");
    let (_, headers, _) = page(&app, "/").await;
    assert!(!headers["content-security-policy"].to_str().unwrap().contains("stripe"));

    let (csrf, attempt) = (hidden(&checkout, "csrf"), hidden(&checkout, "attempt"));
    let email = format!("{}@example.com", unique("card"));
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("attempt", attempt.as_str()),
        ("action", "place"),
        ("email", email.as_str()),
        ("name", "Carla Card"),
        ("line1", "1 Main St"),
        ("city", "Springfield"),
        ("region", "IL"),
        ("postal_code", "62701"),
        ("country", "US"),
        ("payment", ""),
    ];
    // Without the payment method Stripe's script makes (scripts off), nothing is placed.
    let (status, again) = browser.post("/checkout", &form).await;
    assert_eq!(status, 422);
    assert!(again.contains("Enter your card details (the card form needs JavaScript)."), "{again}");
    // A card number typed into our own form is no payment method and is refused.
    form[10] = ("payment", "4242424242424242");
    assert_eq!(browser.post("/checkout", &form).await.0, 422);
    // The payment method's id from Stripe's script places the order (the simulated provider
    // honours Stripe's test payment methods).
    form[10] = ("payment", "pm_card_visa");
    let (status, order_url) = browser.post("/checkout", &form).await;
    assert_eq!(status, 303, "{order_url}");
    assert!(order_url.starts_with("/orders/ord_"), "{order_url}");
    app.eventually("the order ships", || {
        let url = format!("{}{order_url}", app.base);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap().contains("Your order is on its way") }
    })
    .await;
    app.stop().await;
}
