//! The journeys: what simulated shoppers and admins do, weighted like a store's real traffic —
//! many browse and search, some fill a cart and leave, few sign in and buy — plus the admin
//! restocking what runs low.
//!
//! Each journey is a goose scenario whose transactions run in order with a think time between
//! them; each request is named after its journey step, so the report gives a line per step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goose::prelude::*;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::shop::{Admin, Catalog, Hot, SEARCH_WORDS};

/// Journeys and their weights (out of 100 simulated users).
pub const JOURNEYS: [(&str, usize); 5] =
    [("browse", 50), ("search", 25), ("guest cart", 12), ("buy", 12), ("restock", 1)];

/// Journey steps that are shopper pages (the 200 ms p99 target); the others are sign-in (slow
/// by design: password hashing), order polling and the admin's calls.
pub const SHOPPER_PAGES: [&str; 11] = [
    "categories",
    "category page",
    "product",
    "search",
    "search filtered",
    "guest cart new",
    "guest cart add",
    "guest cart view",
    "cart add",
    "cart view",
    "my orders",
];

/// Order statuses after which nothing happens to an order by itself.
pub const SETTLED: [&str; 6] = ["shipped", "delivered", "rejected", "payment_failed", "cancelled", "refunded"];

/// Stripe's test payment methods of every ten checkouts of a run, in turn: eight Visa, one
/// declined, one declined for want of funds. The fifth and the tenth are the declined ones, so a
/// short run has declines for certain (drawn at random, a run of 22 orders had none about once in
/// 135).
const PAYMENT_CYCLE: [&str; 10] = {
    const VISA: &str = "pm_card_visa";
    [
        VISA,
        VISA,
        VISA,
        VISA,
        "pm_card_chargeDeclined",
        VISA,
        VISA,
        VISA,
        VISA,
        "pm_card_chargeDeclinedInsufficientFunds",
    ]
};

/// The payment method of a run's `n`-th checkout (from 0).
pub fn payment_method(n: usize) -> &'static str {
    PAYMENT_CYCLE[n % PAYMENT_CYCLE.len()]
}

/// What the run shares: the shop's catalog and admin, and what the journeys did that the
/// consistency check needs.
#[derive(Debug)]
pub struct Shared {
    /// What the journeys draw from.
    pub catalog: Catalog,
    /// The admin of the restock journey.
    pub admin: Admin,
    /// The think time between steps.
    pub think: (Duration, Duration),
    /// Distinguishes this run's shoppers.
    pub run_id: String,
    /// What the journeys did.
    pub tally: Tally,
}

/// What the journeys did that the platform must account for.
#[derive(Debug, Default)]
pub struct Tally {
    /// Every order placed: its id and the payment method it was placed with.
    pub orders: Mutex<Vec<(String, &'static str)>>,
    /// Stock the admin added, by SKU.
    pub adjustments: Mutex<HashMap<String, i64>>,
    /// Checkouts whose order did not settle while the shopper watched.
    pub unsettled_in_journey: AtomicUsize,
    /// Checkouts begun: the next one's number, which picks its payment method.
    pub checkouts: AtomicUsize,
    /// Problems that are not one request's failure (an answer the journey could not read).
    pub problems: Mutex<Vec<String>>,
}

impl Tally {
    fn problem(&self, what: String) {
        self.problems.lock().expect("not poisoned").push(what);
    }
}

/// The string field `name` of a successful answer to `step`; a missing one is a problem of the
/// run (the journey cannot go on, and would otherwise skip its next steps unnoticed).
fn field(shared: &Shared, step: &str, answer: Option<Value>, name: &str) -> Option<String> {
    let answer = answer?;
    let found = answer[name].as_str().map(str::to_owned);
    if found.is_none() {
        shared.tally.problem(format!("{step} answered without `{name}`: {answer}"));
    }
    found
}

/// The scenarios of the run, each with its weight and think time.
pub fn scenarios(shared: &Arc<Shared>) -> Result<Vec<Scenario>, GooseError> {
    let (low, high) = shared.think;
    let step = |f: fn(Arc<Shared>, &mut GooseUser) -> Step<'_>| {
        let shared = shared.clone();
        let function: TransactionFunction = Arc::new(move |user| f(shared.clone(), user));
        Transaction::new(function)
    };
    let mut all = Vec::new();
    for (name, weight) in JOURNEYS {
        let mut scenario = Scenario::new(name).set_weight(weight)?;
        scenario = match name {
            "browse" => scenario
                .register_transaction(step(categories))
                .register_transaction(step(category_page))
                .register_transaction(step(product))
                .register_transaction(step(product)),
            "search" => scenario
                .register_transaction(step(search))
                .register_transaction(step(search_filtered))
                .register_transaction(step(product)),
            "guest cart" => scenario
                .register_transaction(step(hot_product))
                .register_transaction(step(guest_cart_new))
                .register_transaction(step(guest_cart_add))
                .register_transaction(step(guest_cart_view)),
            "buy" => scenario
                .register_transaction(step(register).set_on_start())
                .register_transaction(step(sign_in))
                .register_transaction(step(category_page))
                .register_transaction(step(hot_product))
                .register_transaction(step(cart_add))
                .register_transaction(step(cart_view))
                .register_transaction(step(shipping))
                .register_transaction(step(code))
                .register_transaction(step(checkout))
                .register_transaction(step(my_orders)),
            "restock" => scenario
                .register_transaction(step(low_stock))
                .register_transaction(step(restock))
                .register_transaction(step(stock_level)),
            _ => unreachable!("every journey has its steps"),
        };
        // The admin works at its own pace: a few restocks a minute.
        let (from, to) = if name == "restock" { (high * 2, high * 4) } else { (low, high) };
        all.push(scenario.set_wait_time(from, to)?);
    }
    Ok(all)
}

type Step<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = TransactionResult> + Send + 'a>>;

/// A shopper's own state between steps.
#[derive(Debug, Default, Clone)]
struct Shopper {
    /// Products the last listing showed.
    seen: Vec<String>,
    /// The product being looked at, and its SKU when it is one shoppers buy.
    looking_at: Option<Hot>,
    /// The guest cart.
    cart: Option<String>,
    /// Account and access token.
    email: String,
    token: Option<String>,
    /// The signed-in shopper's cart id.
    cart_id: Option<String>,
    /// Orders this shopper placed.
    purchases: usize,
    /// The SKU the admin looks at.
    sku: Option<String>,
}

fn shopper(user: &mut GooseUser) -> &mut Shopper {
    if user.get_session_data::<Shopper>().is_none() {
        user.set_session_data(Shopper::default());
    }
    user.get_session_data_mut::<Shopper>().expect("just set")
}

/// One request of a journey step. The answer's JSON when it succeeded; otherwise `None`, the
/// failure already counted by goose under the step's name.
async fn send(
    user: &mut GooseUser,
    step: &str,
    method: GooseMethod,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Option<Value>, Box<TransactionError>> {
    send_keyed(user, step, method, path, token, body, None).await
}

/// [`send`], with an `Idempotency-Key` header when `key` is given.
async fn send_keyed(
    user: &mut GooseUser,
    step: &str,
    method: GooseMethod,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<String>,
) -> Result<Option<Value>, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?;
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    if let Some(key) = key {
        builder = builder.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let request = GooseRequest::builder().method(method).path(path).name(step).set_request_builder(builder).build();
    let mut goose = user.request(request).await?;
    let Ok(response) = goose.response else { return Ok(None) };
    if !response.status().is_success() {
        return Ok(None);
    }
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => {
            let _ = user.set_failure(&format!("{step}: the body did not arrive: {e}"), &mut goose.request, None, None);
            return Ok(None);
        }
    };
    if text.is_empty() {
        return Ok(Some(Value::Null));
    }
    match serde_json::from_str(&text) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            // Counted against the step; the journey goes on.
            let _ = user.set_failure(&format!("{step}: not JSON: {e}"), &mut goose.request, None, Some(&text));
            Ok(None)
        }
    }
}

fn ids(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|p| p["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A product shoppers buy: a doorbuster one time in five.
fn pick_hot(catalog: &Catalog) -> Hot {
    let mut rng = rand::rng();
    let doorbusters = Catalog::DOORBUSTERS.min(catalog.hot.len());
    let pool = if rng.random_ratio(1, 5) { &catalog.hot[..doorbusters] } else { &catalog.hot[doorbusters..] };
    pool.choose(&mut rng).unwrap_or(&catalog.hot[0]).clone()
}

fn categories(_: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        send(user, "categories", GooseMethod::Get, "/v1/categories", None, None).await?;
        Ok(())
    })
}

fn category_page(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let (path, token) = {
            let mut rng = rand::rng();
            let category = shared.catalog.categories.choose(&mut rng).cloned().unwrap_or_default();
            let sort =
                ["relevance", "price_asc", "price_desc", "newest"].choose(&mut rng).copied().unwrap_or("relevance");
            (format!("/v1/products?category={category}&sort={sort}&limit=20"), shopper(user).token.clone())
        };
        if let Some(listing) = send(user, "category page", GooseMethod::Get, &path, token.as_deref(), None).await? {
            shopper(user).seen = ids(&listing);
        }
        Ok(())
    })
}

fn product(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let id = {
            let seen = &shopper(user).seen;
            seen.choose(&mut rand::rng()).cloned().unwrap_or_else(|| pick_hot(&shared.catalog).product_id)
        };
        send(user, "product", GooseMethod::Get, &format!("/v1/products/{id}"), None, None).await?;
        Ok(())
    })
}

fn hot_product(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let hot = pick_hot(&shared.catalog);
        let path = format!("/v1/products/{}", hot.product_id);
        shopper(user).looking_at = Some(hot);
        send(user, "product", GooseMethod::Get, &path, None, None).await?;
        Ok(())
    })
}

fn search(_: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let word = SEARCH_WORDS.choose(&mut rand::rng()).copied().unwrap_or("laptop");
        let path = format!("/v1/products?q={word}&in_stock=true&limit=20");
        if let Some(listing) = send(user, "search", GooseMethod::Get, &path, None, None).await? {
            shopper(user).seen = ids(&listing);
        }
        Ok(())
    })
}

fn search_filtered(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let path = {
            let mut rng = rand::rng();
            let word = SEARCH_WORDS.choose(&mut rng).copied().unwrap_or("laptop");
            let brand = shared.catalog.brands.choose(&mut rng).cloned().unwrap_or_default();
            let low = rng.random_range(0..20) * 1_000;
            let brand = brand.replace('&', "%26").replace(' ', "%20");
            format!(
                "/v1/products?q={word}&brand={brand}&min_price={low}&max_price={}&sort=price_asc&limit=20",
                low + 50_000
            )
        };
        if let Some(listing) = send(user, "search filtered", GooseMethod::Get, &path, None, None).await? {
            let found = ids(&listing);
            if !found.is_empty() {
                shopper(user).seen = found;
            }
        }
        Ok(())
    })
}

fn guest_cart_new(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let cart = send(user, "guest cart new", GooseMethod::Post, "/v1/carts", None, None).await?;
        shopper(user).cart = field(&shared, "guest cart new", cart, "id");
        Ok(())
    })
}

fn guest_cart_add(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let (cart, hot) = {
            let s = shopper(user);
            (s.cart.clone(), s.looking_at.clone())
        };
        let Some(cart) = cart else { return Ok(()) };
        let sku = hot.unwrap_or_else(|| pick_hot(&shared.catalog)).sku;
        let path = format!("/v1/carts/{cart}/items/{sku}");
        send(user, "guest cart add", GooseMethod::Put, &path, None, Some(json!({"quantity": 1}))).await?;
        Ok(())
    })
}

fn guest_cart_view(_: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(cart) = shopper(user).cart.take() else { return Ok(()) };
        send(user, "guest cart view", GooseMethod::Get, &format!("/v1/carts/{cart}"), None, None).await?;
        Ok(())
    })
}

const PASSWORD: &str = "load test shopper 1";

fn register(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let email = format!("lt-{}-{}@example.com", shared.run_id, uuid::Uuid::new_v4().simple());
        let body = json!({"email": email, "password": PASSWORD, "name": "Load Test Shopper"});
        let registered = send(user, "register", GooseMethod::Post, "/v1/auth/register", None, Some(body)).await?;
        let token = field(&shared, "register", registered, "access_token");
        let s = shopper(user);
        s.email = email;
        s.token = token;
        Ok(())
    })
}

fn sign_in(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let email = shopper(user).email.clone();
        if email.is_empty() {
            return Ok(());
        }
        let body = json!({"email": email, "password": PASSWORD});
        let tokens = send(user, "sign in", GooseMethod::Post, "/v1/auth/login", None, Some(body)).await?;
        shopper(user).token = field(&shared, "sign in", tokens, "access_token");
        Ok(())
    })
}

fn cart_add(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let (token, hot) = {
            let s = shopper(user);
            (s.token.clone(), s.looking_at.clone())
        };
        let Some(token) = token else { return Ok(()) };
        let sku = hot.unwrap_or_else(|| pick_hot(&shared.catalog)).sku;
        let quantity = rand::rng().random_range(1..=2);
        let path = format!("/v1/cart/items/{sku}");
        let cart =
            send(user, "cart add", GooseMethod::Put, &path, Some(&token), Some(json!({"quantity": quantity}))).await?;
        shopper(user).cart_id = field(&shared, "cart add", cart, "id");
        Ok(())
    })
}

fn cart_view(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(token) = shopper(user).token.clone() else { return Ok(()) };
        let cart = send(user, "cart view", GooseMethod::Get, "/v1/cart", Some(&token), None).await?;
        if let Some(id) = field(&shared, "cart view", cart, "id") {
            shopper(user).cart_id = Some(id);
        }
        Ok(())
    })
}

/// Where shoppers' orders go (a US state with a sales tax, where the shop has zones).
pub const DESTINATION: (&str, &str, &str) = ("US", "NY", "10001");

/// The shopper looks at the ways to ship the cart home and picks one (what the shop offers there,
/// priced; nothing when it has no zones).
fn shipping(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(token) = shopper(user).token.clone() else { return Ok(()) };
        if !shared.catalog.ships_to {
            return Ok(());
        }
        let (country, region, postal_code) = DESTINATION;
        let path = format!("/v1/cart/shipping-methods?country={country}&region={region}&postal_code={postal_code}");
        let Some(offered) = send(user, "shipping methods", GooseMethod::Get, &path, Some(&token), None).await? else {
            return Ok(());
        };
        let ids: Vec<String> = offered["items"]
            .as_array()
            .map(|methods| methods.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let Some(method) = ids.choose(&mut rand::rng()).cloned() else { return Ok(()) };
        let choice = json!({"country": country, "region": region, "postal_code": postal_code, "method_id": method});
        let cart =
            send(user, "choose shipping", GooseMethod::Put, "/v1/cart/shipping", Some(&token), Some(choice)).await?;
        if let Some(id) = field(&shared, "choose shipping", cart, "id") {
            shopper(user).cart_id = Some(id);
        }
        Ok(())
    })
}

/// On their first order, shoppers enter one of the shop's welcome codes (each shopper's first
/// order, so the code is never refused as used).
fn code(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let (token, first) = {
            let s = shopper(user);
            (s.token.clone(), s.purchases == 0)
        };
        let Some(token) = token else { return Ok(()) };
        let code = {
            if !first {
                return Ok(());
            }
            match shared.catalog.codes.choose(&mut rand::rng()) {
                Some(code) => code.clone(),
                None => return Ok(()),
            }
        };
        // A code the shop refuses (it changed since the run began, another order of this shopper
        // got in first) is a 422 naming why: the shop's answer, not a failure; the shopper buys on.
        let mut builder = user.get_request_builder(&GooseMethod::Post, "/v1/cart/codes")?;
        builder = builder.bearer_auth(&token).json(&json!({"code": code}));
        let request = GooseRequest::builder()
            .method(GooseMethod::Post)
            .path("/v1/cart/codes")
            .name("enter code")
            .set_request_builder(builder)
            .build();
        let mut goose = user.request(request).await?;
        if goose.response.as_ref().is_ok_and(|r| r.status() == 422) {
            user.set_success(&mut goose.request)?;
        }
        Ok(())
    })
}

fn checkout(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let (token, cart) = {
            let s = shopper(user);
            (s.token.clone(), s.cart_id.take())
        };
        let (Some(token), Some(cart)) = (token, cart) else { return Ok(()) };
        let method = payment_method(shared.tally.checkouts.fetch_add(1, Ordering::Relaxed));
        let (country, region, postal_code) = DESTINATION;
        let body = json!({
            "cart_id": cart,
            "payment_method": method,
            "shipping_address": {"name": "Load Test Shopper", "line1": "1 Main St", "city": "New York",
                "region": region, "postal_code": postal_code, "country": country},
        });
        // A fresh key per checkout: each is a new purchase.
        let key = Some(uuid::Uuid::new_v4().to_string());
        let order =
            send_keyed(user, "checkout", GooseMethod::Post, "/v1/orders", Some(&token), Some(body), key).await?;
        let Some(id) = field(&shared, "checkout", order, "id") else { return Ok(()) };
        shopper(user).purchases += 1;
        shared.tally.orders.lock().expect("not poisoned").push((id.clone(), method));
        // The shopper watches the order page until the order settles.
        let path = format!("/v1/orders/{id}");
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some(now) = send(user, "order status", GooseMethod::Get, &path, Some(&token), None).await? else {
                continue;
            };
            if now["status"].as_str().is_some_and(|s| SETTLED.contains(&s)) {
                return Ok(());
            }
        }
        shared.tally.unsettled_in_journey.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
}

fn my_orders(_: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(token) = shopper(user).token.clone() else { return Ok(()) };
        send(user, "my orders", GooseMethod::Get, "/v1/orders?limit=10", Some(&token), None).await?;
        Ok(())
    })
}

async fn admin_token(shared: &Shared) -> Option<String> {
    match shared.admin.token().await {
        Ok(token) => Some(token),
        Err(e) => {
            shared.tally.problem(format!("the admin's token: {e:#}"));
            None
        }
    }
}

fn low_stock(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(token) = admin_token(&shared).await else { return Ok(()) };
        let path = "/admin/v1/inventory?low_stock=true&limit=100";
        let listing = send(user, "admin low stock", GooseMethod::Get, path, Some(&token), None).await?;
        // Restock one of the products shoppers buy that the list shows running low; the list pages
        // by SKU, so when none is on its first page, one of the doorbusters (which sell out).
        let low: Vec<String> = listing
            .map(|l| {
                l["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i["sku"].as_str())
                            .filter(|sku| shared.catalog.initial.contains_key(*sku))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let sku = low.choose(&mut rand::rng()).cloned().unwrap_or_else(|| {
            let doorbusters = &shared.catalog.hot[..Catalog::DOORBUSTERS.min(shared.catalog.hot.len())];
            doorbusters.choose(&mut rand::rng()).map_or_else(|| pick_hot(&shared.catalog).sku, |h| h.sku.clone())
        });
        shopper(user).sku = Some(sku);
        Ok(())
    })
}

/// Units one restock adds.
pub const RESTOCK: i64 = 5;

fn restock(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(sku) = shopper(user).sku.clone() else { return Ok(()) };
        let Some(token) = admin_token(&shared).await else { return Ok(()) };
        let path = format!("/admin/v1/inventory/{sku}/adjust");
        let body = json!({"delta": RESTOCK, "reason": "restock (load test)"});
        if send(user, "admin restock", GooseMethod::Post, &path, Some(&token), Some(body)).await?.is_some() {
            *shared.tally.adjustments.lock().expect("not poisoned").entry(sku).or_default() += RESTOCK;
        }
        Ok(())
    })
}

fn stock_level(shared: Arc<Shared>, user: &mut GooseUser) -> Step<'_> {
    Box::pin(async move {
        let Some(sku) = shopper(user).sku.take() else { return Ok(()) };
        let Some(token) = admin_token(&shared).await else { return Ok(()) };
        send(user, "admin stock", GooseMethod::Get, &format!("/admin/v1/inventory/{sku}"), Some(&token), None).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_out_of_a_hundred_and_buyers_are_few() {
        assert_eq!(JOURNEYS.iter().map(|(_, w)| w).sum::<usize>(), 100);
        let weight = |name: &str| JOURNEYS.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(weight("browse") + weight("search") > 5 * weight("buy"), "many browse, few buy");
    }

    #[test]
    fn every_test_payment_method_is_used_in_its_proportion() {
        let weights =
            [("pm_card_visa", 8), ("pm_card_chargeDeclined", 1), ("pm_card_chargeDeclinedInsufficientFunds", 1)];
        for (method, weight) in weights {
            let used = (0..100).filter(|n| payment_method(*n) == method).count();
            assert_eq!(used, weight * 10, "{method}");
        }
        assert!((0..100).all(|n| weights.iter().any(|(m, _)| *m == payment_method(n))), "no other method");
        assert!((0..5).any(|n| payment_method(n) != "pm_card_visa"), "a short run is declined too");
    }
}
