//! The HTTP conventions hold on every service: problem+json for every error, request ids, size
//! limits, rate limits.

use reqwest::Method;
use serde_json::Value;
use shop_tests::TestApp;

/// Every endpoint that reads a JSON body.
const JSON_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/password-reset"),
    ("POST", "/v1/auth/password-reset/confirm"),
];

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_everywhere() {
    let app = TestApp::start().await;
    for (method, path) in JSON_ENDPOINTS {
        let response = app
            .request(method.parse().unwrap(), path)
            .header("content-type", "application/json")
            .body("{\"email\": \"a@b.c\",")
            .send()
            .await
            .unwrap();
        let (status, body) = problem(response).await;
        assert_eq!(status, 400, "{method} {path}");
        assert_eq!(body["type"], "/problems/malformed-json");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_422_naming_the_field() {
    let app = TestApp::start().await;
    let response = app
        .request(Method::POST, "/v1/auth/password-reset")
        .header("content-type", "application/json")
        .body(r#"{"email": 42}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "email");
    let response = app
        .request(Method::POST, "/v1/auth/password-reset")
        .json(&serde_json::json!({"email": "nope"}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "email");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_oversized_bodies_are_problems() {
    let app = TestApp::start_with(|config| config.body_limit_bytes = 1024).await;
    let (status, _) = problem(app.request(Method::GET, "/v1/nothing-here").send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = problem(app.request(Method::DELETE, "/v1/categories").send().await.unwrap()).await;
    assert_eq!(status, 405);
    let big = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(2048));
    let response = app
        .request(Method::POST, "/v1/auth/password-reset")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, _) = problem(response).await;
    assert_eq!(status, 413);
    app.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_a_429_with_retry_after() {
    let app = TestApp::start_with(|config| {
        config.rate_limit_enabled = true;
        config.rate_limit_per_second = 1;
        config.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app.request(Method::GET, "/v1/categories").send().await.unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = TestApp::start().await;
    let response =
        app.request(Method::GET, "/v1/categories").header("x-request-id", "trace-me-1").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-1");
    let response = app.request(Method::GET, "/nope").send().await.unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::start().await;
    for path in ["/v1/categories", "/nope", "/health", "/ready", "/.well-known/jwks.json"] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'", "{path}");
    }
    app.stop().await;
}
