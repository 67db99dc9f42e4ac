//! The merged OpenAPI document of `shop up`, fuzzed by schemathesis (property-based requests made
//! from the document itself) as a signed-in shopper and as an admin with a second factor: no
//! operation answers a 5xx, every answer's status, content type, headers and body are the
//! documented ones, and an operation that needs a token refuses a request without one.

use std::path::Path;
use std::process::Command;

use reqwest::Client;
use serde_json::json;

use super::running::{Shop, admin_token, free_port, json, on_data_dir, ready};

/// What is checked of every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,ignored_auth";

/// Runs schemathesis over the document as the holder of `token`, in `workdir` (where it keeps its
/// cache); its output, and whether it passed.
fn fuzz(schemathesis: &str, workdir: &Path, base: &str, token: &str, seed: &str) -> (bool, String) {
    let output = Command::new(schemathesis)
        .current_dir(workdir)
        .args(["run", &format!("{base}/openapi.json"), "--checks", CHECKS])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Examples from the document, the boundaries of every schema, then random data.
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--seed", seed])
        // One worker: the generator's caches are not safe across threads (a rare internal error).
        .args(["--workers", "1", "--no-shrink", "--request-timeout", "10"])
        // A bulk import's body is NDJSON, which schemathesis cannot generate; the import has its
        // own tests of bad lines and bodies.
        .args(["--exclude-path", "/admin/v1/products/import"])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_documented_to_a_shopper_and_to_an_admin() {
    let Some(schemathesis) = platform::testing::server_env("SHOP_TEST_SCHEMATHESIS") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let _shop = Shop::start(dir.path(), port, &[]);
    ready(&client, &base).await;
    let admin = admin_token(&client, &base, on_data_dir(dir.path()), "admin@example.com").await;
    let body = json!({"email": "fuzzed@example.com", "password": "correct horse battery", "name": "Shopper"});
    let shopper = json(client.post(format!("{base}/v1/auth/register")).json(&body).send().await.unwrap(), "register")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut failures = Vec::new();
    for (who, token, seed) in [("a shopper", &shopper, "1"), ("an admin", &admin, "2")] {
        let (passed, output) = tokio::task::block_in_place(|| fuzz(&schemathesis, dir.path(), &base, token, seed));
        let summary = output.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>();
        println!("--- schemathesis as {who}\n{}", summary.join("\n"));
        if !passed {
            failures.push(format!("as {who}:\n{output}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
