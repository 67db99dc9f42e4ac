//! The operations endpoints: `/health` (liveness), `/ready` (the service's own dependencies answer),
//! `/metrics` (Prometheus text) and `/openapi.json`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};

/// A dependency `/ready` checks: a database, the queue, the cache, the object store.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// The dependency's name in the `/ready` answer.
    fn name(&self) -> &str;
    /// `Ok` when the dependency answers.
    async fn check(&self) -> Result<(), String>;
}

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the operations endpoints serve.
#[derive(Clone)]
pub struct Ops {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    openapi: bytes::Bytes,
}

impl Ops {
    /// Operations endpoints for a service with this OpenAPI document.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        // Serialised once; each answer shares the bytes.
        let document = serde_json::to_vec(openapi).expect("an OpenAPI document serializes");
        Self { checks: Vec::new(), openapi: document.into() }
    }

    /// Adds a dependency check to `/ready`.
    pub fn check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Adds several checks.
    pub fn checks(mut self, checks: impl IntoIterator<Item = Arc<dyn ReadinessCheck>>) -> Self {
        self.checks.extend(checks);
        self
    }

    /// Runs every check concurrently; the answer and whether all passed.
    pub async fn readiness(&self) -> (bool, Value) {
        let results = futures::future::join_all(self.checks.iter().map(|check| async move {
            let result = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
            };
            (check.name().to_owned(), result)
        }))
        .await;
        let mut all_ok = true;
        let mut checks = Map::new();
        for (name, result) in results {
            let value = match result {
                Ok(()) => json!({"status": "ok"}),
                Err(error) => {
                    all_ok = false;
                    tracing::warn!(dependency = %name, %error, "readiness check failed");
                    json!({"status": "failing", "error": error})
                }
            };
            checks.insert(name, value);
        }
        (all_ok, json!({"status": if all_ok { "ready" } else { "not_ready" }, "checks": checks}))
    }

    /// The routes.
    pub fn router(self) -> Router {
        let ready = self.clone();
        let openapi = self.openapi.clone();
        Router::new()
            .route(
                "/health",
                get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }),
            )
            .route(
                "/ready",
                get(move |headers: axum::http::HeaderMap| {
                    let ops = ready.clone();
                    async move {
                        let (ok, mut body) = ops.readiness().await;
                        // Why a dependency fails (hosts, driver errors) is for internal callers:
                        // the load balancer's and the orchestrator's checks reach the service
                        // directly; a request through a proxy (the edge) carries X-Forwarded-For.
                        if headers.contains_key("x-forwarded-for") {
                            hide_errors(&mut body);
                        }
                        let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                        (status, axum::Json(body))
                    }
                }),
            )
            .route(
                "/metrics",
                get(|| async {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics::render())
                }),
            )
            .route(
                "/openapi.json",
                get(move || {
                    let document = openapi.clone();
                    async move { ([(header::CONTENT_TYPE, "application/json")], document).into_response() }
                }),
            )
    }
}

/// Drops the `error` of every check of a `/ready` answer.
fn hide_errors(body: &mut Value) {
    if let Some(checks) = body.get_mut("checks").and_then(Value::as_object_mut) {
        for check in checks.values_mut() {
            if let Some(check) = check.as_object_mut() {
                check.remove("error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    struct Fixed(&'static str, Result<(), String>);

    #[async_trait]
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        async fn check(&self) -> Result<(), String> {
            self.1.clone()
        }
    }

    async fn ready(ops: Ops) -> (StatusCode, Value) {
        let response =
            ops.router().oneshot(axum::http::Request::get("/ready").body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn ready_reports_each_dependency() {
        let doc = utoipa::openapi::OpenApi::default();
        let ops = Ops::new(&doc).check(Arc::new(Fixed("db", Ok(()))));
        let (status, body) = ready(ops.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["checks"]["db"]["status"], "ok");
        let (status, body) = ready(ops.check(Arc::new(Fixed("queue", Err("refused".into()))))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["queue"]["error"], "refused");
    }

    #[tokio::test]
    async fn ready_tells_why_only_to_internal_callers() {
        let doc = utoipa::openapi::OpenApi::default();
        let ops = Ops::new(&doc).check(Arc::new(Fixed("db", Err("connection refused at 10.0.3.7:5432".into()))));
        let request = axum::http::Request::get("/ready").header("x-forwarded-for", "203.0.113.9").body(Body::empty());
        let response = ops.router().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["checks"]["db"], json!({"status": "failing"}));
    }
}
