//! Logs, traces and metrics.
//!
//! Logs are JSON lines (one object a line, with the request id and trace id of the request, or the
//! id, type and trace id of the event, they belong to, and the ids of the order, payment or SKU at
//! hand); request metrics are Prometheus series served at `/metrics`; business metrics are written
//! in CloudWatch Embedded Metric Format ([`emf`]) so the ECS log stream becomes CloudWatch metrics.

pub mod emf;
pub mod metrics;
pub mod trace;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the process's log subscriber and metrics recorder. Later calls do nothing, so tests and
/// the all-in-one binary may call it freely.
pub fn init(format: LogFormat, filter: &str) {
    metrics::recorder();
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry.with(json_layer(std::io::stdout)).try_init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer().compact()).try_init(),
    };
    // An error only means a subscriber is already installed (a second service in one process).
    let _ = result;
}

/// The JSON lines [`init`] writes, to `writer`: one object a line with the event's fields
/// flattened, the span it was written in (`span`) and every span it is inside, outermost first
/// (`spans`). A line written in a use-case's span (`order.id`) so still carries the request's or
/// the consumed event's ids (`request_id`, `trace_id`, `event.id`) from the spans around it.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(true)
        .with_writer(writer)
}
