//! The `shop` binary as an operator runs it: configuration errors, `up` and a clean stop on SIGTERM,
//! `migrate`.

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
fn migrate_creates_every_store_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = shop().arg("migrate").arg("--data-dir").arg(dir.path()).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    for name in ["user", "product", "order", "payment", "inventory", "events"] {
        assert!(dir.path().join(format!("{name}.db")).exists(), "{name}.db");
    }
}

#[test]
fn up_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = shop()
        .args(["up", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    // "shop is up: http://localhost:PORT (listening on 127.0.0.1:PORT, …)"
    let address = banner.split("listening on ").nth(1).and_then(|s| s.split(',').next()).unwrap().to_owned();
    let health = http_get(&address, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let categories = http_get(&address, "/v1/categories");
    assert!(categories.contains("electronics"), "the demo catalog is seeded: {categories}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "shop did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("shop stopped"), "{rest}");
}

fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
