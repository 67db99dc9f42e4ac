//! `TestApp`: the whole platform, as `shop up` runs it, on a fresh data dir and a free port, for
//! tests that drive it over HTTP as a client would.
//!
//! With `SHOP_TEST_FLEET_URL` set (`scripts/fleet up` prints it), [`TestApp::start`] drives the
//! fleet instead — the five service binaries over SQS behind nginx — so that the same tests prove
//! the deployed shape; a test that needs the process's insides (its configuration, stores or mail
//! folder) starts its own platform either way.

use std::net::SocketAddr;

use platform::Config;
use platform::infra::Infra;
use reqwest::{Client, Method, RequestBuilder};

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A name no other test of this run uses (`prefix-PID-N`): tests that share the fleet make their
/// own SKUs and accounts.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

/// A running platform.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for it.
    pub client: Client,
    /// The platform in this process; `None` when the tests drive the fleet.
    local: Option<Local>,
}

/// The platform this process runs.
struct Local {
    infra: Infra,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

/// The fleet's nginx (`scripts/fleet up`), when the tests are to drive the fleet.
fn fleet_url() -> Option<String> {
    std::env::var("SHOP_TEST_FLEET_URL").ok().filter(|url| !url.is_empty())
}

/// A configuration change that puts every DynamoDB-backed store on the moto server
/// (`SHOP_TEST_AWS_ENDPOINT`), in fresh tables named `{prefix}-{unique}-…`; the same change on a
/// restart finds the same tables. `None` when there is no server: a skip on a laptop, a failure
/// under `CI=true`.
pub fn on_dynamodb(prefix: &str) -> Option<impl Fn(&mut Config) + use<>> {
    let endpoint = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT")?;
    let prefix = format!("{prefix}-{}-", uuid::Uuid::new_v4().simple());
    Some(move |config: &mut Config| {
        config.store_backend = platform::config::StoreBackend::Dynamodb;
        config.aws_endpoint_url = Some(endpoint.parse().expect("SHOP_TEST_AWS_ENDPOINT is a URL"));
        config.dynamodb_table_prefix.clone_from(&prefix);
    })
}

impl TestApp {
    /// Starts the platform with the test configuration (embedded backends, rate limiting off),
    /// adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().expect("a temporary dir"), configure).await
    }

    /// Stops the platform the way SIGTERM does (gracefully: consumers finish, relays drain) and
    /// starts it again on the same data (a new port), adjusted by `configure`: what a deploy does.
    /// A crash is another thing, tested with SIGKILL on the `shop` process (the shop crate's
    /// `crash` tests).
    pub async fn restart(self, configure: impl FnOnce(&mut Config)) -> Self {
        let Local { infra, server, _data: data } = self.local.expect("a restart of the platform in this process");
        infra.shutdown.cancel();
        server.await.expect("the server task").expect("the server stops cleanly");
        // Everything of the old process goes first (its search index writer holds a lock).
        drop(infra);
        Self::start_in(data, configure).await
    }

    async fn start_in(data: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        platform::install_crypto_provider();
        let mut config = Config::for_tests(data.path());
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        config.public_url = Some(format!("http://{address}").parse().expect("a URL"));
        let infra = Infra::build(config, shop::routing()).await.expect("the infrastructure builds");
        let services = shop::services(&infra).await.expect("the services build");
        shop::seed_demo(&infra).await.expect("the demo catalog seeds");
        let server = {
            let infra = infra.clone();
            tokio::spawn(async move { infra.serve(listener, services).await })
        };
        Self {
            base: format!("http://{address}"),
            client: Client::new(),
            local: Some(Local { infra, server, _data: data }),
        }
    }

    /// Starts the platform with the test configuration, or, with `SHOP_TEST_FLEET_URL` set, drives
    /// the fleet there.
    pub async fn start() -> Self {
        match fleet_url() {
            Some(base) => Self { base, client: Client::new(), local: None },
            None => Self::start_with(|_| {}).await,
        }
    }

    /// A request to `path` on the platform.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// The platform's infrastructure (its configuration, bus, stores' folder).
    pub fn infra(&self) -> &Infra {
        &self.local().infra
    }

    fn local(&self) -> &Local {
        self.local.as_ref().expect("this test needs the platform in this process, not the fleet")
    }

    /// Seeds `count` generated products with their stock (as `shop up` does on a first start), and
    /// waits until search finds them all.
    pub async fn seed_products(&self, count: u64) {
        let seeder = shop::Seeder::open(&self.local().infra).await.expect("the seeder opens");
        let report = seeder.products(count, |_| {}).await.expect("the products seed");
        assert_eq!(report.imported, count, "every generated product is imported");
        for _ in 0..600 {
            let response = self.request(Method::GET, "/v1/products?limit=1").send().await.expect("a response");
            let listing: serde_json::Value = response.json().await.expect("a JSON answer");
            if listing["total"].as_u64() == Some(count) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("search did not find the {count} seeded products within a minute");
    }

    /// Seeds the demo shipping zones, tax rates and promotions (what `shop up`'s first start does)
    /// and waits until checkout prices with them (the order service reads its settings anew every
    /// few seconds).
    pub async fn seed_pricing(&self) {
        let seeder = shop::Seeder::open(&self.local().infra).await.expect("the seeder opens");
        assert!(seeder.pricing().await.expect("the pricing seeds") > 0, "the demo pricing was seeded");
        let cart: serde_json::Value =
            self.request(Method::POST, "/v1/carts").send().await.expect("a response").json().await.expect("a cart");
        let path = format!("/v1/carts/{}/shipping-methods?country=US", cart["id"].as_str().expect("a cart id"));
        for _ in 0..200 {
            if self.request(Method::GET, &path).send().await.expect("a response").status().is_success() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the seeded shipping zones were not in force within 20 s");
    }

    /// Whether the tests drive the platform in this process (not the fleet, whose catalog and
    /// stock other tests share).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The emails sent to `to` so far, raw (headers and body): the embedded mode's mail folder, or
    /// in the fleet what SES took (the fleet's AWS emulator, `SHOP_TEST_FLEET_AWS_ENDPOINT`).
    pub async fn mails_to(&self, to: &str) -> Vec<String> {
        let all: Vec<String> = match &self.local {
            Some(local) => match std::fs::read_dir(local.infra.config.data_dir.join("mail")) {
                Ok(entries) => entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect(),
                Err(_) => Vec::new(),
            },
            None => {
                let endpoint = std::env::var("SHOP_TEST_FLEET_AWS_ENDPOINT")
                    .expect("SHOP_TEST_FLEET_AWS_ENDPOINT names the fleet's AWS emulator (scripts/fleet up prints it)");
                let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
                let data: serde_json::Value =
                    self.client.get(url).send().await.expect("the emulator answers").json().await.expect("JSON");
                data["ses"]["RawMessage"]
                    .as_array()
                    .map(|sent| sent.iter().filter_map(|m| m["raw_data"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            }
        };
        all.into_iter().filter(|text| text.contains(&format!("To: {to}\r\n"))).collect()
    }

    /// Sets `sku`'s stock to `on_hand` as the admin holding `admin` does (the inventory service
    /// tells the catalog).
    pub async fn set_stock(&self, admin: &str, sku: &str, on_hand: i64) {
        let response = self
            .request(Method::PUT, &format!("/admin/v1/inventory/{sku}"))
            .bearer_auth(admin)
            .json(&serde_json::json!({"on_hand": on_hand}))
            .send()
            .await
            .expect("the inventory service answers");
        assert_eq!(response.status(), 200, "setting the stock of {sku}");
    }

    /// Makes an admin; its email, password and TOTP secret.
    pub async fn create_admin(&self) -> (String, String, String) {
        let email = format!("admin-{}@example.com", uuid_like());
        let password = "correct horse battery".to_owned();
        let uri = match &self.local {
            Some(local) => {
                let (users, _) = shop_user::user_store(&local.infra.config).await.expect("the user store opens");
                shop_user::app::admin::create_admin(users.as_ref(), &email, &password, "Admin")
                    .await
                    .expect("an admin is made")
                    .1
            }
            // On the fleet's user database, as an operator would.
            None => {
                let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/fleet");
                let output = std::process::Command::new(fleet)
                    .args(["shop", "admin", "create", "--email", &email, "--password", &password])
                    .output()
                    .expect("scripts/fleet runs");
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                let stdout = String::from_utf8(output.stdout).expect("UTF-8");
                stdout.lines().find(|l| l.starts_with("otpauth://")).expect("an otpauth URI").to_owned()
            }
        };
        let secret = uri.split("secret=").nth(1).and_then(|s| s.split('&').next()).expect("a secret").to_owned();
        (email, password, secret)
    }

    /// Makes an admin and signs it in with its TOTP code; the access token.
    pub async fn admin_token(&self) -> String {
        let (email, password, secret) = self.create_admin().await;
        let step =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock").as_secs() as i64 / 30;
        let code = shop_user::domain::totp::code_at(&secret, step).expect("a code");
        let login: serde_json::Value = self
            .request(Method::POST, "/v1/auth/login")
            .json(&serde_json::json!({"email": email, "password": password, "totp": code}))
            .send()
            .await
            .expect("login answers")
            .json()
            .await
            .expect("a token response");
        login["access_token"].as_str().expect("an access token").to_owned()
    }

    /// `GET path` as the holder of `token`; the JSON answer.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let response = self.request(Method::GET, path).bearer_auth(token).send().await.expect("a response");
        response.json().await.expect("a JSON answer")
    }

    /// Sets `quantity` of `sku` in the signed-in shopper's cart; the cart's id.
    pub async fn cart_with(&self, token: &str, sku: &str, quantity: i64) -> String {
        let response = self
            .request(Method::PUT, &format!("/v1/cart/items/{sku}"))
            .bearer_auth(token)
            .json(&serde_json::json!({"quantity": quantity}))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 200, "setting {sku} in the cart");
        let cart: serde_json::Value = response.json().await.expect("a JSON answer");
        cart["id"].as_str().expect("the cart's id").to_owned()
    }

    /// Order `id` once it has settled (shipped, rejected, failed or cancelled), read as `token`;
    /// panics when it has not within a minute (two saga step timeouts). It polls as a patient
    /// client would, less often the longer it waits (20 ms doubling up to a second): fifty shoppers
    /// polling every 20 ms would be thousands of reads a second, which the fleet's emulator serves
    /// one at a time, starving the saga they wait for.
    pub async fn settled(&self, token: &str, id: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            let last = self.get_json(&format!("/v1/orders/{id}"), token).await;
            if matches!(last["status"].as_str(), Some("shipped" | "rejected" | "payment_failed" | "cancelled")) {
                return last;
            }
            assert!(std::time::Instant::now() < deadline, "the order never settled: {last}");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Registers a shopper; the access token.
    pub async fn customer_token(&self) -> String {
        let email = format!("shopper-{}@example.com", uuid_like());
        let body: serde_json::Value = self
            .request(Method::POST, "/v1/auth/register")
            .json(&serde_json::json!({"email": email, "password": "correct horse battery", "name": "Shopper"}))
            .send()
            .await
            .expect("register answers")
            .json()
            .await
            .expect("a token response");
        body["access_token"].as_str().expect("an access token").to_owned()
    }

    /// Waits until `check` holds (polling every 20 ms, for at most 10 s); panics with `what` if it
    /// never does.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !check().await {
            assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the platform the way SIGTERM does and waits for it.
    pub async fn stop(self) {
        if let Some(local) = self.local {
            local.infra.shutdown.cancel();
            local.server.await.expect("the server task").expect("the server stops cleanly");
        }
    }
}

/// Asserts that `response` is a problem+json answer with `status`; its body.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status, "{:?}", response.url());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.expect("a problem+json body")
}
