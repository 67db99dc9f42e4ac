//! Which consumer queues receive which event types.
//!
//! A publisher does not know its consumers: it publishes to the bus, and the routing table (SNS-style
//! fan-out) puts a copy on the queue of every consumer subscribed to that type. Commands are events
//! too (`inventory.reserve.v1`), routed to the one service that executes them.

/// The subscriptions of the platform's consumers: queue name → event type patterns. A pattern is an
/// exact type or a prefix ending in `*`. Each service adds its lines as it gains consumers.
pub const PLATFORM_SUBSCRIPTIONS: &[(&str, &[&str])] = &[
    // Password-reset and verification emails, and the customer-facing steps of orders.
    (
        "user-mail",
        &[
            "user.password_reset_requested.v1",
            "user.email_verification_requested.v1",
            "order.confirmed.v1",
            "order.payment_failed.v1",
            "order.shipped.v1",
            "order.cancelled.v1",
            "cart.abandoned.v1",
        ],
    ),
    // The product search indexer: catalog changes and stock status.
    ("product-indexer", &["product.upserted.v1", "product.deleted.v1", "inventory.changed.v1"]),
    // The inventory's saga commands from the order service.
    ("inventory-commands", &["inventory.reserve.v1", "inventory.commit.v1", "inventory.release.v1"]),
    // The order service's checkout saga: the answers of the inventory and the payment.
    (
        "order-saga",
        &[
            "inventory.reserved.v1",
            "inventory.rejected.v1",
            "inventory.committed.v1",
            "inventory.commit_failed.v1",
            "inventory.released.v1",
            "payment.authorized.v1",
            "payment.failed.v1",
            "payment.captured.v1",
            "payment.capture_failed.v1",
            "payment.voided.v1",
            "payment.refunded.v1",
        ],
    ),
    // The payment's saga commands from the order service.
    ("payment-commands", &["payment.authorize.v1", "payment.capture.v1", "payment.void.v1", "payment.refund.v1"]),
];

/// Event type patterns by consumer queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    subscriptions: Vec<(String, Vec<String>)>,
}

impl Routing {
    /// An empty table: every publish reaches no queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The platform's table.
    pub fn platform() -> Self {
        let mut routing = Self::new();
        for (queue, patterns) in PLATFORM_SUBSCRIPTIONS {
            routing = routing.subscribe(queue, patterns.iter().copied());
        }
        routing
    }

    /// Subscribes `queue` to `patterns`.
    pub fn subscribe<'a>(mut self, queue: &str, patterns: impl IntoIterator<Item = &'a str>) -> Self {
        let patterns = patterns.into_iter().map(str::to_owned);
        match self.subscriptions.iter_mut().find(|(q, _)| q == queue) {
            Some((_, existing)) => existing.extend(patterns),
            None => self.subscriptions.push((queue.to_owned(), patterns.collect())),
        }
        self
    }

    /// The queues an event of `kind` goes to.
    pub fn queues_for<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.subscriptions
            .iter()
            .filter(move |(_, patterns)| patterns.iter().any(|p| matches(p, kind)))
            .map(|(queue, _)| queue.as_str())
    }

    /// Every queue in the table.
    pub fn queues(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.iter().map(|(queue, _)| queue.as_str())
    }
}

fn matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fan_out_to_every_subscribed_queue() {
        let routing = Routing::new()
            .subscribe("indexer", ["product.*", "inventory.changed.v1"])
            .subscribe("notifier", ["order.confirmed.v1"])
            .subscribe("audit", ["*"]);
        let queues = |kind| routing.queues_for(kind).collect::<Vec<_>>();
        assert_eq!(queues("product.upserted.v1"), ["indexer", "audit"]);
        assert_eq!(queues("inventory.changed.v1"), ["indexer", "audit"]);
        assert_eq!(queues("inventory.changed.v2"), ["audit"]);
        assert_eq!(queues("order.confirmed.v1"), ["notifier", "audit"]);
    }
}
