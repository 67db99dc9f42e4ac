//! The run's report: requests per second, latency percentiles and errors per journey step, the
//! shopper pages together, completed orders, and the consistency check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use serde::Serialize;

use crate::consistency::Findings;
use crate::journeys::SHOPPER_PAGES;

/// One line of the report: a journey step, or a group of them.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The step.
    pub step: String,
    /// Requests made.
    pub requests: usize,
    /// Requests that failed (an unexpected status, no answer, or an unreadable one).
    pub errors: usize,
    /// Requests per second over the whole run.
    pub rps: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p95_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// The slowest, in milliseconds.
    pub max_ms: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The profile.
    pub profile: String,
    /// Simulated users at full load.
    pub users: usize,
    /// Seconds the run lasted, ramps included.
    pub seconds: usize,
    /// Journeys completed, by journey, and per minute (the arrival rate the profile reached).
    pub journeys: Vec<(String, usize, f64)>,
    /// Every step, by name.
    pub steps: Vec<Line>,
    /// The shopper pages together (the p99 target's subject).
    pub shopper_pages: Line,
    /// Every request together.
    pub total: Line,
    /// Failed requests by error, the most frequent first.
    pub error_kinds: Vec<(String, usize)>,
    /// Orders placed, and completed (confirmed and kept).
    pub orders_placed: usize,
    /// See `orders_placed`.
    pub orders_completed: usize,
    /// Checkouts whose order did not settle while the shopper watched (10 s).
    pub orders_slow_to_settle: usize,
    /// The consistency check.
    pub consistency: Findings,
}

/// The first time past goose's bucket that starts at `floor`: below 128 µs a bucket is 1 µs wide;
/// above, each power of two is split into 64 buckets.
fn bucket_end(floor: u64) -> u64 {
    let bits = if floor < 128 { 0 } else { 63 - floor.leading_zeros() - 6 };
    floor + (1 << bits)
}

/// Response times of one or more steps, in goose's buckets (each at most 1/64 of its time wide).
#[derive(Debug, Default, Clone)]
struct Times {
    buckets: BTreeMap<u64, usize>,
    count: usize,
    max_us: u64,
}

impl Times {
    fn add(&mut self, data: &GooseRequestMetricTimingData) {
        for (floor, count) in data.times_us.iter() {
            *self.buckets.entry(*floor).or_default() += count;
        }
        self.count += data.counter;
        self.max_us = self.max_us.max(data.maximum_time_us);
    }

    /// The time `share` (0 to 1) of the requests took at most, in microseconds: the upper end of
    /// its bucket, so a percentile is never flattered.
    fn percentile_us(&self, share: f64) -> u64 {
        let rank = ((self.count as f64 * share).ceil() as usize).max(1);
        let mut seen = 0;
        for (floor, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return (bucket_end(*floor) - 1).min(self.max_us);
            }
        }
        self.max_us
    }

    fn line(&self, step: &str, errors: usize, seconds: usize) -> Line {
        let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
        Line {
            step: step.to_owned(),
            requests: self.count,
            errors,
            rps: ((self.count as f64 / seconds.max(1) as f64) * 10.0).round() / 10.0,
            p50_ms: ms(self.percentile_us(0.50)),
            p95_ms: ms(self.percentile_us(0.95)),
            p99_ms: ms(self.percentile_us(0.99)),
            max_ms: ms(self.max_us),
        }
    }
}

impl Report {
    /// The report of a run's `metrics` and its consistency `findings`.
    pub fn new(profile: &str, metrics: &GooseMetrics, findings: Findings, slow_to_settle: usize) -> Self {
        let seconds = metrics.duration;
        let mut steps = Vec::new();
        let mut pages = Times::default();
        let mut all = Times::default();
        let (mut page_errors, mut all_errors) = (0, 0);
        let mut aggregates: Vec<_> = metrics.requests.values().collect();
        aggregates.sort_by(|a, b| a.path.cmp(&b.path));
        for aggregate in aggregates {
            let step = aggregate.path.clone();
            // Goose counts only answered requests in the timings; failures without one as errors.
            let errors = aggregate.fail_count;
            let mut times = Times::default();
            times.add(&aggregate.raw_data);
            steps.push(times.line(&step, errors, seconds));
            if SHOPPER_PAGES.contains(&step.as_str()) {
                pages.add(&aggregate.raw_data);
                page_errors += errors;
            }
            all.add(&aggregate.raw_data);
            all_errors += errors;
        }
        let journeys = metrics
            .scenarios
            .iter()
            .map(|s| {
                let done = s.run_times.counter;
                (s.name.to_string(), done, ((done as f64 * 60.0 / seconds.max(1) as f64) * 10.0).round() / 10.0)
            })
            .collect();
        let mut error_kinds: Vec<(String, usize)> =
            metrics.errors.values().map(|e| (format!("{} {}: {}", e.method, e.name, e.error), e.occurrences)).collect();
        error_kinds.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        Self {
            profile: profile.to_owned(),
            users: metrics.maximum_users,
            seconds,
            journeys,
            shopper_pages: pages.line("shopper pages", page_errors, seconds),
            total: all.line("all requests", all_errors, seconds),
            steps,
            error_kinds,
            orders_placed: findings.orders.values().sum(),
            orders_completed: findings.completed_orders(),
            orders_slow_to_settle: slow_to_settle,
            consistency: findings,
        }
    }

    /// Whether the run had no failed request and the platform is consistent.
    pub fn passed(&self) -> bool {
        self.total.errors == 0 && self.consistency.consistent()
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "profile {}: {} users, {} s", self.profile, self.users, self.seconds);
        let journeys: Vec<String> =
            self.journeys.iter().map(|(name, done, per_minute)| format!("{name} {done} ({per_minute}/min)")).collect();
        let _ = writeln!(out, "journeys: {}", journeys.join(", "));
        let _ = writeln!(
            out,
            "{:<18} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "step", "requests", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for l in self.steps.iter().chain([&self.shopper_pages, &self.total]) {
            let _ = writeln!(
                out,
                "{:<18} {:>9} {:>7} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                l.step, l.requests, l.errors, l.rps, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
        for (error, count) in self.error_kinds.iter().take(10) {
            let _ = writeln!(out, "error ×{count}: {error}");
        }
        let by_status: Vec<String> = self.consistency.orders.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(
            out,
            "orders: {} placed, {} completed ({}); {} slow to settle",
            self.orders_placed,
            self.orders_completed,
            by_status.join(", "),
            self.orders_slow_to_settle
        );
        let c = &self.consistency;
        let _ = writeln!(
            out,
            "consistency: {} ({} confirmed = {} captured; {} SKUs balanced; {} SKUs scanned for negative stock)",
            if c.consistent() { "ok" } else { "FAILED" },
            c.confirmed,
            c.captured,
            c.skus_balanced,
            c.skus_scanned
        );
        for problem in c.problems.iter().take(20) {
            let _ = writeln!(out, "  problem: {problem}");
        }
        if c.problems.len() > 20 {
            let _ = writeln!(out, "  … and {} more", c.problems.len() - 20);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_merged_buckets_and_never_flatter() {
        let mut times = Times::default();
        // Goose's buckets: [100, 101), [1,000, 1,008), [638,976, 647,168).
        assert_eq!((bucket_end(100), bucket_end(1_000), bucket_end(638_976)), (101, 1_008, 647_168));
        // 98 fast requests (about 1 ms) and 2 slow ones (about 640 ms).
        times.buckets.insert(1_000, 98);
        times.buckets.insert(638_976, 2);
        times.count = 100;
        times.max_us = 645_000;
        assert_eq!(times.percentile_us(0.50), 1_007);
        assert_eq!(times.percentile_us(0.98), 1_007);
        assert_eq!(times.percentile_us(0.99), 645_000, "the slow bucket's upper end, within the slowest");
        let line = times.line("x", 0, 10);
        assert_eq!((line.requests, line.rps, line.p50_ms, line.p99_ms), (100, 10.0, 1.0, 645.0));
    }
}
