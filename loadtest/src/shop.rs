//! The shop under test, as the load test's own client sees it: the admin's session, and what the
//! journeys draw from (categories, brands, the products shoppers buy and the stock they started
//! with).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An admin's credentials: the TOTP secret is the one `shop admin create` prints in its
/// `otpauth://` URI.
#[derive(Debug, Clone)]
pub struct AdminLogin {
    /// The admin's email.
    pub email: String,
    /// Its password.
    pub password: String,
    /// Its TOTP secret (base32).
    pub totp_secret: String,
}

impl AdminLogin {
    /// The secret of an `otpauth://` URI, or the argument itself when it is a bare secret.
    pub fn secret_of(uri_or_secret: &str) -> String {
        uri_or_secret
            .split_once("secret=")
            .map(|(_, rest)| rest.split('&').next().unwrap_or_default())
            .unwrap_or(uri_or_secret)
            .to_owned()
    }
}

/// A signed-in admin whose access token is renewed before it expires.
#[derive(Debug)]
pub struct Admin {
    base: String,
    http: reqwest::Client,
    /// Held across a renewal, so one caller renews and the others wait for its token: a refresh
    /// token works once, and presenting it twice revokes the session.
    session: tokio::sync::Mutex<Session>,
}

#[derive(Debug)]
struct Session {
    access: String,
    refresh: String,
    renew_at: Instant,
}

impl Admin {
    /// Signs in at `base` with `login`. A TOTP code is good once: when this step's code was
    /// already used (another run a moment ago), it waits for the next step and tries again.
    pub async fn sign_in(base: &str, login: &AdminLogin) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        for attempt in 0..3 {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
            let step = now / shop_user::domain::totp::STEP_SECS;
            let code = shop_user::domain::totp::code_at(&login.totp_secret, step).context("a bad TOTP secret")?;
            let answer = http
                .post(format!("{base}/v1/auth/login"))
                .json(&json!({"email": login.email, "password": login.password, "totp": code}))
                .send()
                .await
                .context("the shop does not answer")?;
            if answer.status() == StatusCode::UNAUTHORIZED && attempt < 2 {
                let next = (step + 1) * shop_user::domain::totp::STEP_SECS - now;
                tokio::time::sleep(Duration::from_secs(next as u64 + 1)).await;
                continue;
            }
            let tokens = expect_json(answer, "admin sign-in").await?;
            let session = Session::from_tokens(&tokens)?;
            return Ok(Self { base: base.to_owned(), http, session: tokio::sync::Mutex::new(session) });
        }
        bail!("the admin could not sign in")
    }

    /// A current access token.
    pub async fn token(&self) -> anyhow::Result<String> {
        let mut session = self.session.lock().await;
        if Instant::now() < session.renew_at {
            return Ok(session.access.clone());
        }
        let answer = self
            .http
            .post(format!("{}/v1/auth/refresh", self.base))
            .json(&json!({"refresh_token": session.refresh}))
            .send()
            .await?;
        *session = Session::from_tokens(&expect_json(answer, "admin token refresh").await?)?;
        Ok(session.access.clone())
    }

    /// `method path` with `body` as the admin; the JSON answer, or an error naming the status.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request =
            self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(self.token().await?);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.with_context(|| format!("{method} {path}"))?;
        expect_json(answer, &format!("{method} {path}")).await
    }

    /// `GET path` as the admin.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }
}

impl Session {
    fn from_tokens(tokens: &Value) -> anyhow::Result<Self> {
        let field = |name: &str| tokens[name].as_str().map(str::to_owned).with_context(|| format!("no {name}"));
        let lifetime = tokens["expires_in"].as_u64().unwrap_or(900);
        Ok(Self {
            access: field("access_token")?,
            refresh: field("refresh_token")?,
            // Renew at two thirds of the lifetime.
            renew_at: Instant::now() + Duration::from_secs(lifetime * 2 / 3),
        })
    }
}

async fn expect_json(answer: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status}: {body}");
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
}

/// A product shoppers buy, by its first variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hot {
    /// The product.
    pub product_id: String,
    /// The SKU bought.
    pub sku: String,
}

/// What the journeys draw from, read from the shop before the run.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Every category id.
    pub categories: Vec<String>,
    /// Brands of the catalog (search filters).
    pub brands: Vec<String>,
    /// The products shoppers buy. The first [`Catalog::DOORBUSTERS`] have little stock, so they sell
    /// out and the saga's rejection path runs too.
    pub hot: Vec<Hot>,
    /// The stock each hot SKU starts the run with (`on_hand`, nothing reserved).
    pub initial: HashMap<String, i64>,
    /// Discount codes any shopper's first order may carry (codes with no condition but
    /// first-order-only and no total limit); none when the shop has no such promotion.
    pub codes: Vec<String>,
    /// Whether a shipping zone of the shop covers the shoppers' destination (its country, or `*`):
    /// only then do they ask for shipping methods (elsewhere that is a 422, as it should be).
    pub ships_to: bool,
}

/// Whether one of `zones` (`GET /admin/v1/shipping-zones`) ships to `country`.
pub fn ships_to(zones: &Value, country: &str) -> bool {
    zones["items"].as_array().is_some_and(|all| {
        all.iter().any(|zone| zone["countries"].as_array().is_some_and(|c| c.iter().any(|c| c == country || c == "*")))
    })
}

/// The codes of `promotions` (`GET /admin/v1/promotions`) that any shopper's first order may
/// carry, so that entering one is never refused: no minimum, no date window, no allow-list, no
/// total limit.
pub fn first_order_codes(promotions: &Value) -> Vec<String> {
    let open = |p: &Value| {
        let conditions = &p["conditions"];
        ["min_subtotal", "min_quantity", "starts_at", "ends_at", "customers"]
            .iter()
            .all(|c| conditions[c].is_null() || conditions[c].as_array().is_some_and(Vec::is_empty))
            && p["limits"]["total"].is_null()
            && p["active"].as_bool() != Some(false)
    };
    promotions["items"]
        .as_array()
        .map(|all| all.iter().filter(|p| open(p)).filter_map(|p| p["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Words of the seeded catalog's product names, for searches.
pub const SEARCH_WORDS: [&str; 12] = [
    "laptop",
    "earbuds",
    "headphones",
    "phone",
    "kettle",
    "sneaker",
    "tent",
    "chair",
    "desk",
    "blender",
    "boot",
    "backpack",
];

impl Catalog {
    /// Hot SKUs with little stock.
    pub const DOORBUSTERS: usize = 5;
    /// The doorbusters' starting stock.
    pub const DOORBUSTER_STOCK: i64 = 3;
    /// Every other hot SKU's starting stock.
    pub const STOCK: i64 = 1_000;

    /// Reads the categories and brands, picks `hot` in-stock products, and sets their stock: the
    /// doorbusters to [`Catalog::DOORBUSTER_STOCK`], the others to [`Catalog::STOCK`]. The shop
    /// must not be taking orders for them meanwhile (the stock check counts from here).
    pub async fn prepare(base: &str, admin: &Admin, hot: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let get = |path: String| {
            let http = http.clone();
            async move { expect_json(http.get(format!("{base}{path}")).send().await?, &path).await }
        };
        let categories: Vec<String> = get("/v1/categories".into()).await?["items"]
            .as_array()
            .context("no categories")?
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect();
        let mut brands = Vec::new();
        let mut products = Vec::new();
        let mut cursor: Option<String> = None;
        while products.len() < hot {
            let page = get(format!(
                "/v1/products?in_stock=true&limit=100{}",
                cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default()
            ))
            .await?;
            if brands.is_empty() {
                brands = page["facets"]["brand"]
                    .as_array()
                    .map(|b| b.iter().filter_map(|v| v["value"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
            }
            let items = page["items"].as_array().context("no products")?;
            products.extend(items.iter().filter_map(|p| p["id"].as_str().map(str::to_owned)));
            match page["next_cursor"].as_str() {
                Some(next) if !items.is_empty() => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
        products.truncate(hot);
        if products.len() < Self::DOORBUSTERS + 1 {
            bail!("the catalog has {} products in stock; seed more (shop seed --products N)", products.len());
        }
        let mut picked = Vec::with_capacity(products.len());
        for id in products {
            let product = get(format!("/v1/products/{id}")).await?;
            if let Some(sku) = product["variants"][0]["sku"].as_str() {
                picked.push(Hot { product_id: id, sku: sku.to_owned() });
            }
        }
        let mut initial = HashMap::new();
        for (i, hot) in picked.iter().enumerate() {
            let stock = if i < Self::DOORBUSTERS { Self::DOORBUSTER_STOCK } else { Self::STOCK };
            let set = admin
                .call(
                    Method::PUT,
                    &format!("/admin/v1/inventory/{}", hot.sku),
                    Some(json!({"on_hand": stock, "low_stock_threshold": 5})),
                )
                .await?;
            if set["reserved"].as_i64() != Some(0) {
                bail!("{} has units reserved: let earlier orders settle before a run", hot.sku);
            }
            initial.insert(hot.sku.clone(), stock);
        }
        let codes = first_order_codes(&admin.get("/admin/v1/promotions").await?);
        let ships_to = ships_to(&admin.get("/admin/v1/shipping-zones").await?, crate::journeys::DESTINATION.0);
        Ok(Self { categories, brands, hot: picked, initial, codes, ships_to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_every_first_order_may_carry_are_entered() {
        let promotions = json!({"items": [
            {"code": "WELCOME10", "conditions": {"first_order_only": true}, "limits": {"per_customer": 1}},
            {"code": "BIG", "conditions": {"min_subtotal": 7500}, "limits": {}},
            {"code": "FEW", "conditions": {}, "limits": {"total": 10}},
            {"code": "VIP", "conditions": {"customers": ["u1"]}, "limits": {}},
            {"code": null, "conditions": {}, "limits": {}},
            {"code": "OPEN", "conditions": {"customers": []}, "limits": {}},
            {"code": "PAUSED", "conditions": {}, "limits": {}, "active": false}
        ]});
        assert_eq!(first_order_codes(&promotions), ["WELCOME10", "OPEN"]);
        assert!(first_order_codes(&json!({"items": []})).is_empty());
    }

    #[test]
    fn shoppers_ask_for_shipping_only_where_a_zone_covers_them() {
        let zones = |countries: Value| json!({"items": [{"countries": countries}]});
        assert!(ships_to(&zones(json!(["US"])), "US"));
        assert!(ships_to(&zones(json!(["*"])), "US"));
        assert!(!ships_to(&zones(json!(["DE", "FR"])), "US"));
        assert!(!ships_to(&json!({"items": []}), "US"));
    }

    #[test]
    fn the_secret_is_read_from_an_otpauth_uri_or_taken_as_it_is() {
        let uri = "otpauth://totp/Shop:ops@example.com?secret=OHFKMDZED4MML3T7&issuer=Shop&digits=6";
        assert_eq!(AdminLogin::secret_of(uri), "OHFKMDZED4MML3T7");
        assert_eq!(AdminLogin::secret_of("OHFKMDZED4MML3T7"), "OHFKMDZED4MML3T7");
    }
}
