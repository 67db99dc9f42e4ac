//! The `shop` binary as an operator runs it: configuration errors, `up` and a clean stop on SIGTERM,
//! `migrate`, `reconcile`.

mod crash;
mod fuzz;
mod running;
mod twins;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shop() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    // A clean environment: only what each test sets reaches the configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("SHOP_") {
            command.env_remove(key);
        }
    }
    command.env("SHOP_LOG", "warn");
    command
}

#[test]
fn a_bad_setting_stops_the_process_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [("SHOP_PORT", "eighty"), ("SHOP_EVENT_BUS", "kafka"), ("SHOP_OBJECT_STORE", "s3")] {
        let output = shop().arg("migrate").arg("--data-dir").arg(dir.path()).env(var, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let named = if var == "SHOP_OBJECT_STORE" { "SHOP_S3_BUCKET" } else { var };
        assert!(stderr.contains(named), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn reconcile_checks_the_shop_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = shop().arg("reconcile").arg("--data-dir").arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("checked 0 order(s)") && text.contains("every order agrees"), "{text}");
    let output = shop().args(["reconcile", "--json", "--data-dir"]).arg(dir.path()).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]));
}

#[test]
fn migrate_creates_every_store_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let output = shop().arg("migrate").arg("--data-dir").arg(dir.path()).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        runs.push(String::from_utf8(output.stdout).unwrap());
    }
    for name in ["user", "product", "order", "payment", "inventory", "events"] {
        assert!(dir.path().join(format!("{name}.db")).exists(), "{name}.db");
        let line = |run: &str| {
            let line = run.lines().find(|l| l.starts_with(&format!("{name}: ")));
            line.unwrap_or_else(|| panic!("no line for {name} in {run}")).to_owned()
        };
        assert!(!line(&runs[0]).starts_with(&format!("{name}: 0 ")), "the first run migrates {name}: {}", runs[0]);
        assert!(
            line(&runs[1]).starts_with(&format!("{name}: 0 migration(s)")),
            "the second changes nothing: {}",
            runs[1]
        );
    }
}

#[test]
fn seed_adds_the_demo_catalog_and_with_pricing_the_demo_pricing_once() {
    let dir = tempfile::tempdir().unwrap();
    let plain = shop().args(["seed", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(!plain.contains("demo pricing"), "pricing only when asked: {plain}");
    let run = || {
        let output = shop().args(["seed", "--pricing", "--data-dir"]).arg(dir.path()).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let added = |out: &str, what: &str| -> usize {
        let line = out.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what} in {out}"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert!(added(&plain, "demo catalog:") > 0, "{plain}");
    let first = run();
    assert_eq!(added(&first, "demo catalog:"), 0, "{first}");
    assert!(added(&first, "demo pricing:") >= 5, "three zones and two promotions: {first}");
    let second = run();
    assert_eq!(added(&second, "demo catalog:"), 0, "{second}");
    assert_eq!(added(&second, "demo pricing:"), 0, "{second}");
}

#[test]
fn up_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut shop = Running::start(dir.path());
    let health = http_get(&shop.address, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let categories = http_get(&shop.address, "/v1/categories");
    assert!(categories.contains("electronics"), "the demo catalog is seeded: {categories}");
    // … with generated products, which the indexer makes searchable.
    let started = Instant::now();
    loop {
        let search = http_get(&shop.address, "/v1/products?limit=1&in_stock=true");
        if search.contains("\"total\":") && !search.contains("\"total\":0") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the demo products were not indexed: {search}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let product = http_get(&shop.address, "/v1/products/seed-000001");
    assert!(product.starts_with("HTTP/1.1 200"), "{product}");

    let status = Command::new("kill").args(["-TERM", &shop.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = shop.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "shop did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut shop.stdout, &mut rest).unwrap();
    assert!(rest.contains("shop stopped"), "{rest}");
}

fn http_get(address: &str, path: &str) -> String {
    http(address, "GET", path, &[], "")
}

fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    )
    .unwrap();
    for (name, value) in headers {
        write!(stream, "{name}: {value}\r\n").unwrap();
    }
    write!(stream, "\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `shop up` on a free port; killed when dropped.
struct Running {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    address: String,
}

impl Running {
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = shop()
            .args(["up", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).unwrap();
        // "shop is up: http://localhost:PORT (listening on 127.0.0.1:PORT, …)"
        let address = banner.split("listening on ").nth(1).and_then(|s| s.split(',').next()).unwrap().to_owned();
        Self { child, stdout, address }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_admin_created_on_the_command_line_signs_in_with_totp() {
    let dir = tempfile::tempdir().unwrap();
    let create = |email: &str, password: &str| {
        shop()
            .args(["admin", "create", "--email", email, "--password", password, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let output = create("root@example.com", "correct horse battery");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let uri = stdout.lines().find(|l| l.starts_with("otpauth://totp/")).expect("an otpauth URI");
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    // The same email again, or a weak password, is refused with a message.
    let again = create("ROOT@example.com", "correct horse battery");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("email"), "{}", String::from_utf8_lossy(&again.stderr));
    let weak = create("other@example.com", "short");
    assert!(!weak.status.success());

    let shop = Running::start(dir.path());
    let step = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 30;
    let code = shop_user::domain::totp::code_at(&secret, step).unwrap();
    let body = format!(r#"{{"email":"root@example.com","password":"correct horse battery","totp":"{code}"}}"#);
    let login = http(&shop.address, "POST", "/v1/auth/login", &[("content-type", "application/json")], &body);
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let token = login.split("\"access_token\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let users = http(&shop.address, "GET", "/admin/v1/users", &[("authorization", &bearer)], "");
    assert!(users.starts_with("HTTP/1.1 200"), "{users}");
    assert!(users.contains("root@example.com"));
}

#[test]
fn provision_makes_the_tables_queues_and_bucket_on_an_emulator_and_is_idempotent() {
    let Some(endpoint) = platform::testing::server_env("SHOP_TEST_AWS_ENDPOINT") else { return };
    let dir = tempfile::tempdir().unwrap();
    let unique = uuid_like();
    let (prefix, queues, bucket) = (format!("prov-{unique}-"), format!("prov-{unique}-"), format!("prov-{unique}"));
    let provision = || {
        shop()
            .arg("provision")
            .arg("--data-dir")
            .arg(dir.path())
            .env("SHOP_AWS_ENDPOINT_URL", &endpoint)
            .env("SHOP_DYNAMODB_TABLE_PREFIX", &prefix)
            .env("SHOP_SQS_QUEUE_PREFIX", &queues)
            .env("SHOP_S3_BUCKET", &bucket)
            .env("SHOP_MAIL_SINK", "ses")
            .env("SHOP_MAIL_FROM", format!("Shop <shop-{unique}@example.com>"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    for run in 0..2 {
        let output = provision();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "run {run}: {}{stdout}", String::from_utf8_lossy(&output.stderr));
        assert!(
            stdout.contains("sqs: 5 queues ready")
                && stdout.contains(&format!("s3: bucket {bucket} ready"))
                && stdout.contains(&format!("ses: shop-{unique}@example.com verified")),
            "{stdout}"
        );
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = platform::testing::dynamodb_client().unwrap();
        for table in ["products", "inventory-reservations", "orders", "carts", "order-outbox", "order-settings"] {
            let found = client.describe_table().table_name(format!("{prefix}{table}")).send().await;
            assert!(found.is_ok(), "{prefix}{table}: {found:?}");
        }
        let orders = client.describe_table().table_name(format!("{prefix}orders")).send().await.unwrap();
        let indexes: Vec<&str> =
            orders.table().unwrap().global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
        assert!(indexes.contains(&"by-status-shard") && indexes.contains(&"by-deadline"), "{indexes:?}");
    });
    // On DynamoDB, migrate also brings what earlier versions wrote up to date (nothing here).
    let migrated = shop()
        .arg("migrate")
        .arg("--data-dir")
        .arg(dir.path())
        .env("SHOP_STORE_BACKEND", "dynamodb")
        .env("SHOP_AWS_ENDPOINT_URL", &endpoint)
        .env("SHOP_DYNAMODB_TABLE_PREFIX", &prefix)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&migrated.stdout);
    assert!(migrated.status.success(), "{}{stdout}", String::from_utf8_lossy(&migrated.stderr));
    assert!(stdout.contains("dynamodb: 0 order(s) given their status shard"), "{stdout}");
    // Not on AWS: there the CDK app makes everything.
    let refused = shop().arg("provision").arg("--data-dir").arg(dir.path()).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("SHOP_AWS_ENDPOINT_URL"));
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

#[test]
fn events_parked_lists_what_a_relay_parked_with_the_reason() {
    use platform::events::outbox::{OutboxRelay, SqliteOutbox};
    let dir = tempfile::tempdir().unwrap();
    assert!(shop().arg("migrate").arg("--data-dir").arg(dir.path()).output().unwrap().status.success());
    let odd =
        platform::events::Event::new("user.registered.v1", "user", serde_json::json!({"email": "a\u{FFFE}@x.io"}));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = platform::sqlite::Db::open(dir.path().join("user.db")).unwrap();
        let written = odd.clone();
        db.transaction(move |tx| platform::sqlite::outbox_push(tx, &written)).await.unwrap();
        let bus =
            platform::events::sqlite::SqliteQueue::open(dir.path().join("events.db"), shop::routing(), Duration::ZERO)
                .unwrap();
        let relay =
            OutboxRelay::new(std::sync::Arc::new(SqliteOutbox(db)), std::sync::Arc::new(bus), Duration::from_secs(60));
        assert_eq!(relay.drain().await.unwrap(), 0);
    });
    let output = shop().args(["events", "parked", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0]["service"].as_str(), lines[0]["event_id"].as_str()), (Some("user"), Some(odd.id.as_str())));
    assert!(lines[0]["reason"].as_str().unwrap().contains("U+FFFE"), "{}", lines[0]);
    assert_eq!(lines[0]["body"]["data"]["email"], "a\u{FFFE}@x.io");
    let other = shop().args(["events", "parked", "--service", "order", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(other.status.success() && other.stdout.is_empty(), "another service's outbox has parked nothing");
    let wrong =
        shop().args(["events", "parked", "--service", "billing", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("no service named billing"));
}
