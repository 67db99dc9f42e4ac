//! W3C trace context and request ids.
//!
//! Every request gets a request id (`x-request-id`, kept when the edge already set one) and a trace
//! id (from an incoming `traceparent`, or a new one). Both go on the request's span, so every log
//! line of the request carries them, and into the request's extensions as [`TraceContext`], so
//! handlers can stamp them on the events they publish.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use rand::RngCore;

/// The `x-request-id` header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C `traceparent` header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The trace a request (or an event) belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: this hop's span.
    pub span_id: String,
    /// The request id (the correlation id of what the request causes).
    pub request_id: String,
}

impl TraceContext {
    /// A new trace with fresh ids.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace = [0u8; 16];
        rng.fill_bytes(&mut trace);
        let span = rng.next_u64();
        // Encoded into buffers on the stack (every request makes these).
        let mut buffer = uuid::Uuid::encode_buffer();
        let trace_id = uuid::Uuid::from_bytes(trace).simple().encode_lower(&mut buffer).to_owned();
        let request_id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buffer).to_owned();
        Self { trace_id, span_id: format!("{span:016x}"), request_id }
    }

    /// Continues the trace of a `traceparent` value, with a new span; a malformed one starts a new
    /// trace.
    pub fn from_traceparent(value: Option<&str>) -> Self {
        let mut context = Self::new_root();
        if let Some(trace_id) = value.and_then(parse_traceparent) {
            context.trace_id = trace_id;
        }
        context
    }

    /// The context of a request with `headers`: its `traceparent` continued (or a new trace) and its
    /// `x-request-id` kept when the edge set a sane one (or a new one).
    pub fn of_request(headers: &HeaderMap) -> Self {
        let mut context = Self::from_traceparent(headers.get(&TRACEPARENT).and_then(|v| v.to_str().ok()));
        if let Some(id) = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        {
            context.request_id = id.to_owned();
        }
        context
    }

    /// The `traceparent` value for the next hop.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// The trace id of a valid `traceparent` (version 00), or `None`.
pub fn parse_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<TraceContext>().cloned().unwrap_or_else(TraceContext::new_root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_their_formats_and_differ() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        let lower_hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        assert!(lower_hex(&a.trace_id, 32), "{}", a.trace_id);
        assert!(lower_hex(&a.span_id, 16), "{}", a.span_id);
        let request = uuid::Uuid::parse_str(&a.request_id).unwrap();
        assert_eq!((request.get_version_num(), a.request_id.len()), (7, 36));
        assert_eq!(parse_traceparent(&a.traceparent()).as_deref(), Some(a.trace_id.as_str()));
        assert_ne!((&a.trace_id, &a.span_id, &a.request_id), (&b.trace_id, &b.span_id, &b.request_id));
    }

    #[test]
    fn a_valid_traceparent_is_continued() {
        let context = TraceContext::from_traceparent(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span_id, "00f067aa0ba902b7");
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        let context = TraceContext::from_traceparent(Some("garbage"));
        assert_eq!(context.trace_id.len(), 32);
    }
}
