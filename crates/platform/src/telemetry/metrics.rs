//! Prometheus request metrics: count, latency histogram and errors, by route and status.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often the histograms' recorded samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's metrics recorder, installed on first use, with a thread that folds the
/// histograms' samples into their buckets every few seconds: the recorder keeps every sample until
/// then, so without it memory grows with every request between two scrapes.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours still renders its own.
        let _ = metrics::set_global_recorder(recorder);
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics upkeep");
        handle
    })
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    recorder().render()
}

/// The handles of one (method, route, status)'s metrics.
struct Handles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    errors: Option<metrics::Counter>,
}

/// Handles by route, then (method, status): labels are made and looked up in the registry once per
/// combination, not per request.
type HandleMap = HashMap<Box<str>, Vec<(Method, u16, Arc<Handles>)>>;

fn handles(method: &Method, route: &str, status: StatusCode) -> Arc<Handles> {
    static HANDLES: OnceLock<RwLock<HandleMap>> = OnceLock::new();
    let map = HANDLES.get_or_init(RwLock::default);
    let code = status.as_u16();
    let found = |map: &HandleMap| {
        map.get(route)?.iter().find(|(m, s, _)| *s == code && m == method).map(|(_, _, handles)| handles.clone())
    };
    if let Some(handles) = found(&map.read().unwrap_or_else(|e| e.into_inner())) {
        return handles;
    }
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    if let Some(handles) = found(&map) {
        return handles;
    }
    let labels = [("method", method.as_str().to_owned()), ("route", route.to_owned()), ("status", code.to_string())];
    let handles = Arc::new(Handles {
        requests: metrics::counter!("http_requests_total", &labels),
        duration: metrics::histogram!("http_request_duration_seconds", &labels),
        errors: (status.is_client_error() || status.is_server_error())
            .then(|| metrics::counter!("http_errors_total", &labels)),
    });
    map.entry(route.into()).or_default().push((method.clone(), code, handles.clone()));
    handles
}

/// Records a request answered with `status`: `http_requests_total`, `http_request_duration_seconds`
/// (since `started`) and `http_errors_total`, labelled by method, route template (`unmatched` for
/// none) and status.
pub fn record(method: &Method, route: Option<&str>, status: StatusCode, started: Instant) {
    let handles = handles(method, route.unwrap_or("unmatched"), status);
    handles.requests.increment(1);
    handles.duration.record(started.elapsed().as_secs_f64());
    if let Some(errors) = &handles.errors {
        errors.increment(1);
    }
}
