//! The operations endpoints answer for the whole process.

use reqwest::Method;
use serde_json::Value;
use shop_tests::TestApp;

#[tokio::test]
async fn health_and_ready_answer_for_the_whole_process() {
    let app = TestApp::start().await;
    let health = app.request(Method::GET, "/health").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app.request(Method::GET, "/ready").send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    for dependency in ["event_bus", "cache", "object_store", "user", "product", "order", "payment", "inventory"] {
        assert_eq!(ready["checks"][dependency]["status"], "ok", "{dependency}: {ready}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_merges_every_service() {
    let app = TestApp::start().await;
    let document: Value = app.request(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v1/users/me",
        "/v1/auth/register",
        "/v1/auth/login",
        "/.well-known/jwks.json",
        "/admin/v1/users",
        "/v1/auth/password-reset",
        "/v1/categories",
        "/v1/carts",
        "/v1/carts/{id}",
        "/v1/payments/webhooks/stripe",
        "/v1/inventory/{sku}",
    ] {
        assert!(paths.contains_key(path), "{path} is missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::start().await;
    app.request(Method::GET, "/v1/inventory/NOPE-1").send().await.unwrap();
    let metrics = app.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total")
                && l.contains("route=\"/v1/inventory/{sku}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no request count for the route:\n{metrics}"));
    assert!(line.contains("method=\"GET\""), "{line}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "a latency histogram");
    assert!(metrics.lines().any(|l| l.starts_with("http_errors_total") && l.contains("status=\"404\"")));
    app.stop().await;
}
