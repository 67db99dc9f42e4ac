//! The CloudEvents 1.0 envelope (structured JSON mode) every event and command travels in.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::telemetry::trace::TraceContext;

/// One event (`order.placed.v1`) or command (`inventory.reserve.v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always `1.0`.
    pub specversion: String,
    /// A UUIDv7: unique, and ordered by creation time.
    pub id: String,
    /// What happened, versioned: `order.placed.v1`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who said it: `/services/order`.
    pub source: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// What it is about (an order id, a SKU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Ties together everything one request caused (extension attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// The W3C trace context of the cause (distributed tracing extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The payload.
    pub data: Value,
}

/// An envelope that is not a valid CloudEvent.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON of the envelope's shape.
    #[error("not a CloudEvents envelope")]
    Json(#[from] serde_json::Error),
    /// A required attribute is wrong.
    #[error("invalid CloudEvents attribute {0}")]
    Attribute(&'static str),
}

impl Event {
    /// A new event of `kind` from service `service`, carrying `data`.
    pub fn new(kind: impl Into<String>, service: &str, data: impl Serialize) -> Self {
        Self {
            specversion: "1.0".into(),
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.into(),
            source: format!("/services/{service}"),
            time: Utc::now(),
            datacontenttype: "application/json".into(),
            subject: None,
            correlationid: None,
            traceparent: None,
            data: serde_json::to_value(data).expect("event data serializes"),
        }
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Stamps the trace and correlation ids of the request that caused it.
    pub fn with_trace(mut self, context: &TraceContext) -> Self {
        self.traceparent = Some(context.traceparent());
        self.correlationid = Some(context.request_id.clone());
        self
    }

    /// Continues the trace and correlation of the event that caused this one.
    pub fn caused_by(mut self, cause: &Event) -> Self {
        self.traceparent = cause.traceparent.clone();
        self.correlationid = cause.correlationid.clone().or_else(|| Some(cause.id.clone()));
        self
    }

    /// [`caused_by`](Self::caused_by) `cause` when there is one.
    pub fn with_cause(self, cause: Option<&Event>) -> Self {
        match cause {
            Some(cause) => self.caused_by(cause),
            None => self,
        }
    }

    /// The payload as a typed value.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }

    /// Parses and checks an envelope.
    pub fn from_json(body: &str) -> Result<Self, EnvelopeError> {
        let event: Event = serde_json::from_str(body)?;
        if event.specversion != "1.0" {
            return Err(EnvelopeError::Attribute("specversion"));
        }
        if event.id.is_empty() {
            return Err(EnvelopeError::Attribute("id"));
        }
        if event.kind.is_empty() {
            return Err(EnvelopeError::Attribute("type"));
        }
        if event.source.is_empty() {
            return Err(EnvelopeError::Attribute("source"));
        }
        Ok(event)
    }

    /// The envelope as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_is_a_structured_cloudevent() {
        let context = TraceContext::new_root();
        let event =
            Event::new("order.placed.v1", "order", json!({"order_id": "o1"})).with_subject("o1").with_trace(&context);
        let value: Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["type"], "order.placed.v1");
        assert_eq!(value["source"], "/services/order");
        assert_eq!(value["datacontenttype"], "application/json");
        assert_eq!(value["traceparent"], context.traceparent());
        assert_eq!(value["correlationid"], context.request_id);
        let id = uuid::Uuid::parse_str(value["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(chrono::DateTime::parse_from_rfc3339(value["time"].as_str().unwrap()).is_ok());
        assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
    }

    #[test]
    fn ids_are_ordered_by_creation() {
        let a = Event::new("t.v1", "s", json!(null));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Event::new("t.v1", "s", json!(null));
        assert!(a.id < b.id);
    }

    #[test]
    fn a_caused_event_keeps_the_correlation() {
        let cause = Event::new("a.v1", "s", json!(null)).with_trace(&TraceContext::new_root());
        let effect = Event::new("b.v1", "s", json!(null)).caused_by(&cause);
        assert_eq!(effect.correlationid, cause.correlationid);
        assert_eq!(effect.traceparent, cause.traceparent);
    }

    #[test]
    fn an_invalid_envelope_is_refused() {
        assert!(Event::from_json("{").is_err());
        let mut event = Event::new("a.v1", "s", json!(null));
        event.specversion = "0.3".into();
        assert!(matches!(Event::from_json(&event.to_json()), Err(EnvelopeError::Attribute("specversion"))));
    }
}
