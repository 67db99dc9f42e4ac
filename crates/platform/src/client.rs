//! The internal service client: calls another service's API with a timeout and retries, either over
//! HTTP (separate processes: the local stack, AWS) or straight through its router in the same
//! process (the embedded mode), so both paths run the same handlers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use url::Url;

use crate::telemetry::trace::{REQUEST_ID, TRACEPARENT, TraceContext};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer within the timeout.
    #[error("{service} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The service called.
        service: &'static str,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The service could not be reached.
    #[error("{service} is unreachable")]
    Unavailable {
        /// The service called.
        service: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service answered with an error status.
    #[error("{service} answered {status}")]
    Status {
        /// The service called.
        service: &'static str,
        /// The status.
        status: StatusCode,
        /// The body (problem+json, usually).
        body: Bytes,
    },
    /// The answer was not what was expected.
    #[error("{service} answered with a body that does not decode")]
    Decode {
        /// The service called.
        service: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The status the service answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            ClientError::Timeout { .. } | ClientError::Unavailable { .. } => true,
            ClientError::Status { status, .. } => {
                matches!(status.as_u16(), 429 | 502 | 503 | 504)
            }
            ClientError::Decode { .. } => false,
        }
    }
}

#[derive(Clone)]
enum Transport {
    Http { client: reqwest::Client, base: Url },
    InProcess(Arc<OnceLock<Router>>),
}

/// Options of one call.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// A bearer token to forward.
    pub bearer: Option<String>,
    /// An idempotency key: makes a POST safe to retry.
    pub idempotency_key: Option<String>,
    /// The trace to continue.
    pub trace: Option<TraceContext>,
    /// Headers that say who the call is made for (the viewer's address as the edge and the proxies
    /// wrote it: see [`crate::http::rate_limit::ClientAddress::forwarding`]), copied onto the call,
    /// so a service that counts attempts by address counts the viewer's, not the caller's.
    pub forwarded: Vec<(http::HeaderName, HeaderValue)>,
    /// The viewer's connection, for a call answered in this process (over HTTP the caller's own
    /// connection is the peer, and `forwarded` says the rest).
    pub peer: Option<std::net::SocketAddr>,
}

impl Call {
    /// A call made with `token` as its bearer.
    pub fn bearer(token: &str) -> Self {
        Self { bearer: Some(token.to_owned()), ..Self::default() }
    }
}

/// A client of one service.
#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    transport: Transport,
    timeout: Duration,
    retries: u32,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient").field("service", &self.service).finish()
    }
}

/// Wires an in-process client to its service's router once that is built.
#[derive(Clone)]
pub struct InProcessHandle(Arc<OnceLock<Router>>);

impl InProcessHandle {
    /// Points the client at `router`; later calls do nothing.
    pub fn wire(&self, router: Router) {
        let _ = self.0.set(router);
    }
}

impl ServiceClient {
    /// A client over HTTP to the service at `base`.
    pub fn http(service: &'static str, base: Url) -> Self {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client builds");
        Self { service, transport: Transport::Http { client, base }, timeout: Duration::from_secs(5), retries: 2 }
    }

    /// A client that calls the service's router in this process; wire it with the handle.
    pub fn in_process(service: &'static str) -> (Self, InProcessHandle) {
        let cell = Arc::new(OnceLock::new());
        let client = Self {
            service,
            transport: Transport::InProcess(cell.clone()),
            timeout: Duration::from_secs(5),
            retries: 2,
        };
        (client, InProcessHandle(cell))
    }

    /// Sets the timeout of each attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many times a failed safe call is retried.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, call: &Call) -> Result<T, ClientError> {
        let body = self.request(Method::GET, path, None, call).await?;
        self.decode(&body)
    }

    /// `method path` with a JSON body, decoded.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        call: &Call,
    ) -> Result<T, ClientError> {
        let answer = self.submit(method, path, body, call).await?;
        self.decode(&answer)
    }

    /// `method path` with a JSON body, for an answer whose body is not read (a 202 or a 204).
    pub async fn submit<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        call: &Call,
    ) -> Result<Bytes, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("a request body serializes"));
        self.request(method, path, Some(bytes), call).await
    }

    fn decode<T: DeserializeOwned>(&self, body: &Bytes) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|source| ClientError::Decode { service: self.service, source })
    }

    /// Sends a request and returns the body of a 2xx answer, retrying safe calls that failed in
    /// passing.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        call: &Call,
    ) -> Result<Bytes, ClientError> {
        let safe = method == Method::GET
            || method == Method::HEAD
            || method == Method::PUT
            || method == Method::DELETE
            || call.idempotency_key.is_some();
        let mut attempt = 0;
        loop {
            let result =
                tokio::time::timeout(self.timeout, self.attempt(&method, path, body.clone(), call)).await.unwrap_or(
                    Err(ClientError::Timeout { service: self.service, timeout_ms: self.timeout.as_millis() as u64 }),
                );
            match result {
                Err(error) if safe && attempt < self.retries && error.retryable() => {
                    attempt += 1;
                    metrics::counter!("service_client_retries_total", "service" => self.service).increment(1);
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    fn headers(&self, call: &Call, has_body: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if has_body {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(value) = call.bearer.as_ref().and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Some(value) = call.idempotency_key.as_ref().and_then(|k| HeaderValue::from_str(k).ok()) {
            headers.insert("idempotency-key", value);
        }
        for (name, value) in &call.forwarded {
            headers.append(name.clone(), value.clone());
        }
        if let Some(trace) = &call.trace {
            if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
                headers.insert(TRACEPARENT.clone(), value);
            }
            if let Ok(value) = HeaderValue::from_str(&trace.request_id) {
                headers.insert(REQUEST_ID.clone(), value);
            }
        }
        headers
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
        call: &Call,
    ) -> Result<Bytes, ClientError> {
        let headers = self.headers(call, body.is_some());
        let unavailable = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Unavailable {
            service: self.service,
            source,
        };
        let (status, bytes) = match &self.transport {
            Transport::Http { client, base } => {
                let url = base.join(path.trim_start_matches('/')).map_err(|e| unavailable(e.into()))?;
                let mut request = client.request(method.clone(), url).headers(headers);
                if let Some(body) = body {
                    request = request.body(body);
                }
                let response = request.send().await.map_err(|e| unavailable(e.into()))?;
                let status = response.status();
                (status, response.bytes().await.map_err(|e| unavailable(e.into()))?)
            }
            Transport::InProcess(router) => {
                let router = router
                    .get()
                    .cloned()
                    .ok_or_else(|| unavailable(format!("{} is not wired in this process", self.service).into()))?;
                let mut request = http::Request::builder().method(method.clone()).uri(path);
                *request.headers_mut().expect("a fresh builder has headers") = headers;
                let mut request = request
                    .body(body.map(Body::from).unwrap_or_else(Body::empty))
                    .map_err(|e| unavailable(e.into()))?;
                if let Some(peer) = call.peer {
                    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                }
                let response = router.oneshot(request).await.map_err(|e| unavailable(e.into()))?;
                let status = response.status();
                let bytes = response.into_body().collect().await.map_err(|e| unavailable(e.into()))?.to_bytes();
                (status, bytes)
            }
        };
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(ClientError::Status { service: self.service, status, body: bytes })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::routing::get;
    use serde_json::{Value, json};

    use super::*;

    fn flaky_router(failures: u32) -> (Router, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let router = Router::new()
            .route(
                "/v1/things/{id}",
                get(move |axum::extract::Path(id): axum::extract::Path<String>, headers: HeaderMap| {
                    let counter = counter.clone();
                    async move {
                        if counter.fetch_add(1, Ordering::SeqCst) < failures {
                            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({}))).into_response();
                        }
                        let trace = headers.get("traceparent").map(|v| v.to_str().unwrap().to_owned());
                        axum::Json(json!({"id": id, "traceparent": trace})).into_response()
                    }
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    "late"
                }),
            );
        (router, calls)
    }

    use axum::response::IntoResponse;

    #[tokio::test]
    async fn an_in_process_call_retries_a_passing_failure_and_forwards_the_trace() {
        let (router, calls) = flaky_router(1);
        let (client, handle) = ServiceClient::in_process("things");
        handle.wire(router);
        let trace = TraceContext::new_root();
        let call = Call { trace: Some(trace.clone()), ..Call::default() };
        let value: Value = client.get("/v1/things/7", &call).await.unwrap();
        assert_eq!(value["id"], "7");
        assert_eq!(value["traceparent"], trace.traceparent());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_http_call_reaches_a_real_server_and_reports_errors() {
        let (router, _) = flaky_router(0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = ServiceClient::http("things", base).timeout(Duration::from_millis(300)).retries(1);
        let value: Value = client.get("/v1/things/abc", &Call::default()).await.unwrap();
        assert_eq!(value["id"], "abc");
        let error = client.get::<Value>("/missing", &Call::default()).await.unwrap_err();
        assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
        let error = client.get::<Value>("/slow", &Call::default()).await.unwrap_err();
        assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    }

    #[tokio::test]
    async fn an_unwired_or_unreachable_service_is_unavailable() {
        let (client, _) = ServiceClient::in_process("nobody");
        let error = client.get::<Value>("/", &Call::default()).await.unwrap_err();
        assert!(matches!(error, ClientError::Unavailable { .. }));
        let client = ServiceClient::http("nobody", Url::parse("http://127.0.0.1:9/").unwrap()).retries(0);
        let error = client.get::<Value>("/", &Call::default()).await.unwrap_err();
        assert!(matches!(error, ClientError::Unavailable { .. }), "{error}");
    }
}
