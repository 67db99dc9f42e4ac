//! `ApiError`: every failure a handler returns, answered as RFC 9457 `application/problem+json`.
//!
//! Client errors carry a stable `type`, a title and a detail that helps the caller; validation
//! failures add an `errors` list naming each bad field. Server errors are logged once here, with
//! their whole cause chain, and answered with an opaque body.

use std::error::Error as StdError;
use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ErrorKind, Kinded, cause_chain};

/// `Retry-After` of a 503 a busy or throttled dependency caused.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a JSON pointer-ish dotted path (`shipping_address.country`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The problem+json body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid fields of a validation failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error a handler answers with.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Self {
        Self { status, kind, title, detail: None, errors: Vec::new(), retry_after: None, source: None }
    }

    /// An error of a service-specific kind (`type` becomes `/problems/{kind}`).
    pub fn custom(status: StatusCode, kind: &'static str, title: &'static str) -> Self {
        Self::new(status, kind, title)
    }

    /// Adds a human-readable detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400: the request cannot be read at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").with_detail(detail)
    }

    /// 400: the body is not valid JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON body").with_detail(detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required").with_detail(detail)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    /// 404: no such resource (or not the caller's to see).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").with_detail(detail)
    }

    /// 405: the path exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
    }

    /// 409: the request conflicts with the current state (a taken email, a stale version).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
    }

    /// 412: a condition the request set (`If-Match`) no longer holds.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "precondition-failed", "Precondition failed").with_detail(detail)
    }

    /// 413: the body is larger than the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large")
            .with_detail(format!("the request body must not exceed {limit} bytes"))
    }

    /// 415: the body is not in a media type the endpoint reads.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            .with_detail(detail)
    }

    /// 422: the request is well-formed but some fields are invalid.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut error =
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation-error", "Invalid request").with_detail(detail);
        error.errors = errors;
        error
    }

    /// 422: one invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }

    /// 422: the request is well-formed but cannot be processed (e.g. an idempotency key reused with
    /// another body).
    pub fn unprocessable(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, kind, "Unprocessable request").with_detail(detail)
    }

    /// 429: too many requests; try again after `retry_after_secs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
            .with_detail(format!("retry after {retry_after_secs} s"));
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 408: the request took longer than the server allows.
    pub fn timeout() -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "timeout", "Request timeout")
    }

    /// 503: a dependency is not available; the client may retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut error =
            Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable").with_detail(detail);
        error.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        error
    }

    /// 500: a fault of ours. The cause is logged, never sent.
    pub fn internal(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let mut error = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error");
        error.source = Some(source.into());
        error
    }

    /// An error for any status, used when translating a response from elsewhere.
    pub fn from_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let kind = match status.as_u16() {
            400 => "bad-request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            408 => "timeout",
            409 => "conflict",
            413 => "payload-too-large",
            415 => "unsupported-media-type",
            422 => "validation-error",
            429 => "rate-limited",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "error",
        };
        Self::new(status, kind, title)
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable problem type.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: if self.status.is_server_error() && self.source.is_some() { None } else { self.detail.clone() },
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

impl<E: Kinded> From<E> for ApiError {
    /// The one answer of every port error: its kind picks the status, a client error tells its
    /// message, and a server error keeps its cause for the log only.
    fn from(error: E) -> Self {
        match error.kind() {
            ErrorKind::NotFound => Self::not_found(error.to_string()),
            ErrorKind::Conflict => Self::conflict(error.to_string()),
            ErrorKind::PreconditionFailed => Self::precondition_failed(error.to_string()),
            ErrorKind::Invalid { field } => Self::invalid_field(field, error.to_string()),
            ErrorKind::Unavailable => {
                let mut answer = Self::unavailable("the service is busy; try again shortly");
                answer.source = Some(Box::new(error));
                answer
            }
            ErrorKind::Internal => Self::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            match &self.source {
                Some(source) => tracing::error!(
                    error.kind = self.kind,
                    error.cause = %cause_chain(source.as_ref()),
                    "request failed"
                ),
                None => tracing::warn!(error.kind = self.kind, detail = ?self.detail, "request failed"),
            }
        }
        let body = serde_json::to_vec(&self.problem()).expect("a problem always serializes");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Collects field errors while validating a request.
///
/// ```
/// use platform::http::Validator;
/// let mut v = Validator::new();
/// v.check(false, "email", "must be an email address");
/// assert!(v.finish().is_err());
/// ```
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.add(field, message);
        }
        self
    }

    /// Records an error.
    pub fn add(&mut self, field: &str, message: impl Into<String>) -> &mut Self {
        self.errors.push(FieldError { field: field.to_owned(), message: message.into() });
        self
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was recorded, else every bad field (for a use-case to report in its own
    /// error).
    pub fn into_errors(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() { Ok(()) } else { Err(self.errors) }
    }

    /// `Ok` when nothing was recorded, else a 422 naming every bad field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::validation(self.errors)) }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use serde_json::Value;

    use super::*;

    async fn body(response: Response) -> (StatusCode, String, Value) {
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_validation_error_lists_every_field() {
        let mut v = Validator::new();
        v.check(false, "email", "must be an email address").check(true, "name", "unused");
        v.add("password", "must be at least 10 characters");
        let (status, content_type, json) = body(v.finish().unwrap_err().into_response()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(json["type"], "/problems/validation-error");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["field"], "email");
        assert_eq!(json["errors"][1]["field"], "password");
    }

    #[tokio::test]
    async fn a_server_error_hides_its_cause() {
        let cause = std::io::Error::other("disk on fire at /secret/path");
        let (status, _, json) = body(ApiError::internal(cause).into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!json.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn rate_limited_answers_carry_retry_after() {
        let response = ApiError::too_many_requests(7).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[tokio::test]
    async fn every_unavailable_answer_says_when_to_retry() {
        let named = ApiError::unavailable("the provider is down").into_response();
        assert_eq!(named.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(named.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_AFTER_SECS.to_string().as_str());
        let kinded = ApiError::from(crate::dynamodb::DynamoError::Throttled).into_response();
        assert_eq!(kinded.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(kinded.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn the_cause_chain_is_kept() {
        let error = ApiError::internal(std::io::Error::other("root cause"));
        assert_eq!(cause_chain(&error), "500 Internal server error: root cause");
    }
}
