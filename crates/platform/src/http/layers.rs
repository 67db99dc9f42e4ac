//! The middleware stack every service router gets, in one place so every service behaves alike:
//! request ids and trace context, the request span, metrics, panic recovery, rate limiting, CORS,
//! compression, a request timeout, a body size limit, and problem+json for every error answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use super::error::{ApiError, PROBLEM_JSON};
use super::rate_limit::{RateLimiter, RateLimits};
use crate::config::Config;
use crate::telemetry::trace::TraceContext;

/// The settings of the stack, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body in bytes (routes that take more set their own limit).
    pub body_limit_bytes: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// Allowed CORS origins (`*` for any); empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// Per-client rate limits; `None` turns rate limiting off.
    pub rate_limits: Option<RateLimits>,
}

impl HttpSettings {
    /// The settings a configuration names.
    pub fn from_config(config: &Config) -> Self {
        Self {
            body_limit_bytes: config.body_limit_bytes,
            request_timeout: config.request_timeout(),
            cors_origins: config.cors_origin_list().map(str::to_owned).collect(),
            rate_limits: config.rate_limit_enabled.then_some(RateLimits {
                per_second: config.rate_limit_per_second,
                burst: config.rate_limit_burst,
                client: crate::http::rate_limit::ClientAddress::from_config(config),
            }),
        }
    }
}

/// Bodies this small go as they are: they fit in one packet either way, and making a gzip stream
/// (its state alone is hundreds of KiB to set up) costs more than the bytes it would save.
pub const COMPRESS_ABOVE_BYTES: u64 = 1024;

/// Which answers are compressed: bodies over [`COMPRESS_ABOVE_BYTES`] (or of unknown length), not
/// images (compressed already) nor event streams (which must not be buffered).
fn worth_compressing() -> impl Predicate {
    SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
}

/// Wraps `router` in the whole stack, with problem+json answers for unknown paths and methods.
pub fn apply(router: Router, settings: &HttpSettings) -> Router {
    apply_with_pages(router, settings, None)
}

/// [`apply`], with `not_found_page` answering browsers (requests that accept HTML before JSON)
/// for unknown paths.
pub fn apply_with_pages(router: Router, settings: &HttpSettings, not_found_page: Option<fn() -> Response>) -> Router {
    // The metrics middleware records into the global recorder: make sure there is one.
    crate::telemetry::metrics::recorder();
    let router = router
        .fallback(move |headers: axum::http::HeaderMap| async move {
            match not_found_page {
                Some(page) if wants_html(&headers) => page(),
                _ => ApiError::not_found("no such resource").into_response(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));

    let inner = ServiceBuilder::new()
        .layer(CompressionLayer::new().compress_when(worth_compressing()))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, settings.request_timeout));
    let router = router.layer(inner);

    let router = match cors_layer(&settings.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = match &settings.rate_limits {
        Some(limits) => {
            let limiter = Arc::new(RateLimiter::new(limits.clone()));
            router.layer(middleware::from_fn(move |request: Request, next: Next| {
                let limiter = limiter.clone();
                async move { limiter.middleware(request, next).await }
            }))
        }
        None => router,
    };
    router.layer(ServiceBuilder::new().layer(EdgeLayer { body_limit: settings.body_limit_bytes }).layer(
        CatchPanicLayer::custom(|_| ApiError::internal(std::io::Error::other("handler panicked")).into_response()),
    ))
}

/// The outer layer of every route, in one service (one future, one clone a request, where a stack
/// of middleware functions would box a future and clone the stack below it at each step): the
/// request id and trace context, the request's span and its answer's log line (built only when the
/// level records them), the request metrics (their handles kept, not looked up by labels each
/// time), problem+json for error answers that are not JSON yet, and the security headers.
#[derive(Debug, Clone, Copy)]
struct EdgeLayer {
    body_limit: usize,
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Edge { inner, body_limit: self.body_limit }
    }
}

#[derive(Debug, Clone)]
struct Edge<S> {
    inner: S,
    body_limit: usize,
}

impl<S, B> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = axum::http::Response<B>, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        use tracing::Instrument;
        let started = std::time::Instant::now();
        let context = TraceContext::of_request(request.headers());
        let request_id = HeaderValue::from_str(&context.request_id).ok();
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = context.request_id.as_str(),
            trace_id = context.trace_id.as_str(),
        );
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        request.extensions_mut().insert(context);
        // The inner service is ready (`poll_ready` said so): take it and leave a clone for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let body_limit = self.body_limit;
        Box::pin(
            async move {
                let response = inner.call(request).await?.map(axum::body::Body::new);
                let mut response = problem_for_errors(response, body_limit);
                let status = response.status();
                crate::telemetry::metrics::record(&method, route.as_ref().map(MatchedPath::as_str), status, started);
                tracing::info!(
                    latency_us = started.elapsed().as_micros() as u64,
                    status = status.as_u16(),
                    "finished processing request"
                );
                let headers = response.headers_mut();
                for (name, value) in [
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
                    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
                    (header::X_FRAME_OPTIONS, "DENY"),
                ] {
                    headers.entry(name).or_insert(HeaderValue::from_static(value));
                }
                if let Some(id) = request_id {
                    headers.insert(crate::telemetry::trace::REQUEST_ID.clone(), id);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

// Every answer carries, unless it set its own: no MIME sniffing (an upload served as what it
// claims, never run as HTML), no referrer beyond the origin to other sites, and no framing
// (clickjacking). A page that sets its own `Content-Security-Policy` keeps it (and must say
// `frame-ancestors` itself). (In [`Edge`].)

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// Whether a request is a browser's asking for a page: its `Accept` names HTML, and not after JSON.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match (accept.find("text/html"), accept.find("application/json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Turns an error answer that is not already JSON (those made by layers and by axum itself: 404,
/// 405, 408, 413, …) into problem+json with the same status and the headers that say more
/// (`Retry-After`, `Allow`, CORS).
fn problem_for_errors(response: Response, body_limit: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.starts_with(PROBLEM_JSON) || v.starts_with("application/json") || v.starts_with("text/html")
    });
    // A page (the web tier's error pages) or a JSON answer says what went wrong already.
    if is_json {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(body_limit),
        StatusCode::REQUEST_TIMEOUT => ApiError::timeout(),
        other => ApiError::from_status(other),
    };
    let (parts, _) = response.into_parts();
    let mut replaced = error.into_response();
    for (name, value) in &parts.headers {
        let keep = name == header::RETRY_AFTER
            || name == header::ALLOW
            || name == header::VARY
            || name.as_str().starts_with("access-control-");
        if keep {
            replaced.headers_mut().append(name.clone(), value.clone());
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    fn settings() -> HttpSettings {
        HttpSettings {
            body_limit_bytes: 64,
            request_timeout: Duration::from_millis(200),
            cors_origins: vec!["https://shop.example".into()],
            rate_limits: None,
        }
    }

    fn app() -> Router {
        let router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/panic", get(|| async { boom() }))
            .route("/big", get(|| async { "many words ".repeat(200) }));
        apply(router, &settings())
    }

    fn boom() -> &'static str {
        panic!("boom")
    }

    async fn send(request: axum::http::Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_are_problems() {
        let (status, headers, json) = send(axum::http::Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 404);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(json["status"], 404);
        let (status, headers, _) = send(axum::http::Request::delete("/ok").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 405);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_413_problem() {
        let (status, headers, json) =
            send(axum::http::Request::post("/echo").body(Body::from(vec![b'x'; 65])).unwrap()).await;
        assert_eq!(status, 413);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(json["type"], "/problems/payload-too-large");
    }

    #[tokio::test]
    async fn a_slow_request_times_out_with_a_problem() {
        let (status, headers, _) = send(axum::http::Request::get("/slow").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 408);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[tokio::test]
    async fn a_panic_is_a_500_problem() {
        let (status, headers, json) = send(axum::http::Request::get("/panic").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 500);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(!json.to_string().contains("boom"));
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id_and_the_given_one_is_kept() {
        let (_, headers, _) = send(axum::http::Request::get("/ok").body(Body::empty()).unwrap()).await;
        assert!(!headers["x-request-id"].is_empty());
        let (_, headers, _) =
            send(axum::http::Request::get("/ok").header("x-request-id", "abc-123").body(Body::empty()).unwrap()).await;
        assert_eq!(headers["x-request-id"], "abc-123");
    }

    #[tokio::test]
    async fn cors_allows_only_the_configured_origins() {
        let preflight = |origin: &str| {
            axum::http::Request::options("/ok")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .body(Body::empty())
                .unwrap()
        };
        let (_, headers, _) = send(preflight("https://shop.example")).await;
        assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
        let (_, headers, _) = send(preflight("https://evil.example")).await;
        assert!(headers.get("access-control-allow-origin").is_none());
    }

    #[tokio::test]
    async fn an_error_made_into_a_problem_keeps_its_cors_and_security_headers_and_is_counted() {
        let request = axum::http::Request::get("/nope").header("origin", "https://shop.example").body(Body::empty());
        let (status, headers, json) = send(request.unwrap()).await;
        assert_eq!(status, 404);
        assert_eq!(json["status"], 404);
        assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(!headers["x-request-id"].is_empty());

        // A panic's 500 still gets the request id, and both answers are in the metrics.
        let (_, headers, _) = send(axum::http::Request::get("/panic").body(Body::empty()).unwrap()).await;
        assert!(!headers["x-request-id"].is_empty());
        let metrics = crate::telemetry::metrics::render();
        for line in [
            r#"http_errors_total{method="GET",route="/panic",status="500"}"#,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#,
        ] {
            assert!(metrics.contains(line), "{line} in\n{metrics}");
        }
    }

    #[tokio::test]
    async fn large_answers_are_compressed_and_small_ones_go_as_they_are() {
        let gzip = |path: &str| axum::http::Request::get(path).header("accept-encoding", "gzip").body(Body::empty());
        let response = app().oneshot(gzip("/big").unwrap()).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let sent = response.into_body().collect().await.unwrap().to_bytes();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&sent[..]), &mut text).unwrap();
        assert_eq!(text, "many words ".repeat(200));
        assert!(sent.len() < 200, "compressed to {} bytes", sent.len());

        let response = app().oneshot(gzip("/ok").unwrap()).await.unwrap();
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none(), "two bytes are not worth a gzip stream");
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
}
