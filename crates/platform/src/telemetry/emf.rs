//! CloudWatch Embedded Metric Format: business metrics (orders placed, payments declined, …) written
//! as structured log lines that CloudWatch turns into metrics without an API call.
//!
//! ```
//! use platform::telemetry::emf::{MetricSet, Unit};
//! let line = MetricSet::new("Shop/Orders")
//!     .dimension("Service", "order")
//!     .metric("OrdersPlaced", 1.0, Unit::Count)
//!     .to_json_line_at(1_700_000_000_000);
//! assert!(line.contains("\"CloudWatchMetrics\""));
//! ```

use std::io::Write;

use serde_json::{Map, Value, json};

/// A CloudWatch metric unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of things.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// No unit (money in minor units, ratios).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One EMF record: a namespace, dimensions, and metric values sharing them.
#[derive(Debug, Clone)]
pub struct MetricSet {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, f64, Unit)>,
    properties: Map<String, Value>,
}

impl MetricSet {
    /// An empty record in `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), dimensions: Vec::new(), metrics: Vec::new(), properties: Map::new() }
    }

    /// Adds a dimension (CloudWatch allows 30 a record).
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    /// Adds a metric value.
    pub fn metric(mut self, name: impl Into<String>, value: f64, unit: Unit) -> Self {
        self.metrics.push((name.into(), value, unit));
        self
    }

    /// Adds a property: searchable in Logs Insights, not a metric.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The record as one JSON line, stamped with `timestamp_ms` (Unix epoch milliseconds).
    pub fn to_json_line_at(&self, timestamp_ms: i64) -> String {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.metrics {
            root.insert(name.clone(), json!(value));
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let metric_defs: Vec<Value> =
            self.metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metric_defs,
                }],
            }),
        );
        Value::Object(root).to_string()
    }

    /// Writes the record to `out` as one line.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let line = self.to_json_line_at(chrono::Utc::now().timestamp_millis());
        writeln!(out, "{line}")
    }

    /// Writes the record to standard output, where the ECS log driver picks it up.
    pub fn emit(&self) {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        if let Err(error) = self.write_to(&mut lock) {
            tracing::warn!(%error, "could not write an EMF record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_follows_the_embedded_metric_format() {
        let line = MetricSet::new("Shop/Checkout")
            .dimension("Service", "order")
            .metric("OrdersPlaced", 2.0, Unit::Count)
            .metric("CheckoutLatency", 41.5, Unit::Milliseconds)
            .property("order_id", "o-1")
            .to_json_line_at(1_700_000_000_000);
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Shop/Checkout");
        assert_eq!(directive["Dimensions"], json!([["Service"]]));
        assert_eq!(directive["Metrics"][1], json!({"Name": "CheckoutLatency", "Unit": "Milliseconds"}));
        // Every dimension and metric named by the directive is a member of the root object.
        assert_eq!(value["Service"], "order");
        assert_eq!(value["OrdersPlaced"], 2.0);
        assert_eq!(value["CheckoutLatency"], 41.5);
        assert_eq!(value["order_id"], "o-1");
    }

    #[test]
    fn write_to_ends_the_line() {
        let mut out = Vec::new();
        MetricSet::new("N").metric("M", 1.0, Unit::Count).write_to(&mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
    }
}
