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
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use crate::events::Event;

/// The namespace of the platform's business metrics (the dashboards and alarms read it).
pub const NAMESPACE: &str = "Shop";

/// The business metrics, as `(service, metric)`: the contract with the CloudWatch dashboards and
/// alarms of the CDK app (`infra/lib/observability-stack.ts`, `BUSINESS_METRICS`). Each record
/// carries the dimension `Service`.
pub const BUSINESS_METRICS: &[(&str, &str)] = &[
    ("order", "OrdersPlaced"),
    ("order", "OrderRevenue"),
    ("order", "CartsCreated"),
    ("order", "CartsAbandoned"),
    ("payment", "PaymentsAuthorized"),
    ("payment", "PaymentsFailed"),
    ("inventory", "LowStockEvents"),
    ("order", "ReconcileRepaired"),
    ("order", "ReconcileUnrepaired"),
    ("payment", "ReconcileRepaired"),
    ("payment", "ReconcileUnrepaired"),
    ("user", "OutboxParked"),
    ("product", "OutboxParked"),
    ("order", "OutboxParked"),
    ("payment", "OutboxParked"),
    ("inventory", "OutboxParked"),
];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns business-metric records on for this process (`SHOP_METRICS_EMF`).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether business-metric records are written.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// One business metric of `service` (`value` in `unit`), as a record.
pub fn business(service: &str, metric: &str, value: f64, unit: Unit) -> MetricSet {
    MetricSet::new(NAMESPACE).dimension("Service", service).metric(metric, value, unit)
}

/// The business metrics an event published by a service stands for: an order placed (count and
/// revenue in minor units), a cart abandoned, a payment authorized or failed, a SKU low on stock.
pub fn of_event(event: &Event) -> Option<MetricSet> {
    Some(match event.kind.as_str() {
        "order.placed.v1" => {
            let total = event.data.pointer("/total/amount").and_then(Value::as_i64).unwrap_or(0);
            let currency = event.data.pointer("/total/currency").and_then(Value::as_str).unwrap_or_default();
            business("order", "OrdersPlaced", 1.0, Unit::Count)
                .metric("OrderRevenue", total as f64, Unit::None)
                .property("Currency", currency)
        }
        "cart.abandoned.v1" => business("order", "CartsAbandoned", 1.0, Unit::Count),
        "payment.authorized.v1" => business("payment", "PaymentsAuthorized", 1.0, Unit::Count),
        "payment.failed.v1" => business("payment", "PaymentsFailed", 1.0, Unit::Count),
        "inventory.low_stock.v1" => business("inventory", "LowStockEvents", 1.0, Unit::Count),
        _ => return None,
    })
}

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

    /// Writes the record to standard output when business metrics are on ([`enable`]).
    pub fn record(&self) {
        if enabled() {
            self.emit();
        }
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

    #[test]
    fn published_events_stand_for_the_business_metrics_the_dashboards_read() {
        let placed = Event::new(
            "order.placed.v1",
            "order",
            json!({"order_id": "o", "total": {"amount": 2599, "currency": "USD"}}),
        );
        let line: Value = serde_json::from_str(&of_event(&placed).unwrap().to_json_line_at(1)).unwrap();
        assert_eq!((line["OrdersPlaced"].as_f64(), line["OrderRevenue"].as_f64()), (Some(1.0), Some(2599.0)));
        assert_eq!((line["Service"].as_str(), line["Currency"].as_str()), (Some("order"), Some("USD")));
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        let mut named = vec![];
        for kind in [
            "order.placed.v1",
            "cart.abandoned.v1",
            "payment.authorized.v1",
            "payment.failed.v1",
            "inventory.low_stock.v1",
        ] {
            let set = of_event(&Event::new(kind, "x", json!({}))).unwrap();
            let line: Value = serde_json::from_str(&set.to_json_line_at(1)).unwrap();
            for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap() {
                named.push((line["Service"].as_str().unwrap().to_owned(), metric["Name"].as_str().unwrap().to_owned()));
            }
        }
        named.push(("order".into(), "CartsCreated".into()));
        // The reconcilers' counts (`contracts::reconcile::count`).
        for service in ["order", "payment"] {
            for metric in ["ReconcileRepaired", "ReconcileUnrepaired"] {
                named.push((service.into(), metric.into()));
            }
        }
        // The outbox relay's parked events (`events::outbox`), per service.
        for service in ["user", "product", "order", "payment", "inventory"] {
            named.push((service.into(), "OutboxParked".into()));
        }
        let mut expected: Vec<(String, String)> =
            BUSINESS_METRICS.iter().map(|(s, m)| ((*s).to_owned(), (*m).to_owned())).collect();
        named.sort();
        expected.sort();
        assert_eq!(named, expected, "every business metric has its source");
        assert!(of_event(&Event::new("order.shipped.v1", "order", json!({}))).is_none());
    }
}
