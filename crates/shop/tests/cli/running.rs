//! `shop up` as an operator runs it, for the tests that drive it over HTTP from outside (crashes,
//! fuzzing): on a fixed port, with an admin made on the command line.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// `shop up` as its own process on a fixed port (so that a restart answers where the clients
/// were), rate limiting off, with `env` added.
pub struct Shop {
    child: Child,
}

impl Shop {
    pub fn start(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let child = super::shop()
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .env("SHOP_RATE_LIMIT_ENABLED", "false")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("shop up starts");
        Self { child }
    }

    /// SIGKILL: the process ends where it is, mid-transaction, with its queues and outboxes as
    /// they are on disk.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("the killed process is reaped");
        assert!(!status.success(), "killed, not stopped: {status:?}");
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until the platform answers `/ready`.
pub async fn ready(client: &Client, base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/ready")).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "shop up never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn json(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{what}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

/// Makes an admin with `create` (`shop admin create` on the platform's stores, without its
/// credentials) and signs it in with its TOTP code: a token carrying the second factor.
pub async fn admin_token(client: &Client, base: &str, mut create: Command, email: &str) -> String {
    let password = "correct horse battery";
    let output = create.args(["admin", "create", "--email", email, "--password", password]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let uri = stdout.lines().find(|l| l.starts_with("otpauth://totp/")).expect("an otpauth URI");
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let step = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 30;
    let code = shop_user::domain::totp::code_at(&secret, step).unwrap();
    let body = json!({"email": email, "password": password, "totp": code});
    let login = json(client.post(format!("{base}/v1/auth/login")).json(&body).send().await.unwrap(), "login").await;
    login["access_token"].as_str().unwrap().to_owned()
}

/// `shop` on the embedded platform's data in `data_dir`, for [`admin_token`].
pub fn on_data_dir(data_dir: &Path) -> Command {
    let mut command = super::shop();
    command.arg("--data-dir").arg(data_dir);
    command
}

/// The fleet started by `scripts/fleet up` (the five service binaries over SQS behind nginx), whose
/// balancer's URL is in `SHOP_TEST_FLEET_URL`, driven through `scripts/fleet`.
pub struct Fleet {
    pub url: String,
}

impl Fleet {
    /// The fleet named by `SHOP_TEST_FLEET_URL`; a test that needs one fails without it.
    pub fn from_env() -> Self {
        let url = std::env::var("SHOP_TEST_FLEET_URL")
            .expect("SHOP_TEST_FLEET_URL names a running fleet (scripts/fleet-e2e starts one and runs this test)");
        Self { url: url.trim_end_matches('/').to_owned() }
    }

    /// `scripts/fleet ARGS`.
    pub fn script() -> Command {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fleet"))
    }

    /// `shop` on the fleet's stores, for [`admin_token`].
    pub fn shop() -> Command {
        let mut command = Self::script();
        command.arg("shop");
        command
    }

    /// SIGKILL to `service`'s process.
    pub async fn kill(&self, service: &str) {
        Self::run(["kill", service]).await;
    }

    /// Starts `service` again and waits until it is ready.
    pub async fn restart(&self, service: &str) {
        Self::run(["restart", service]).await;
    }

    async fn run<const N: usize>(args: [&str; N]) {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let output = tokio::task::spawn_blocking(move || Self::script().args(&args).output().unwrap()).await.unwrap();
        assert!(output.status.success(), "scripts/fleet: {}", String::from_utf8_lossy(&output.stderr));
    }
}
