//! Which consumer queues receive which event types.
//!
//! A publisher does not know its consumers: it publishes to the bus, and the routing table (SNS-style
//! fan-out) puts a copy on the queue of every consumer subscribed to that type. Each service
//! declares its [`Subscription`]s next to its consumers; the process that runs the deployment's
//! services (the `shop` crate) puts them together into one [`Routing`]. Commands are events
//! too (`inventory.reserve.v1`), routed to the one service that executes them.

/// A consumer queue and the event types it receives, as the service that consumes it declares it
/// (next to its consumers). A pattern is an exact type or a prefix ending in `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The queue.
    pub queue: &'static str,
    /// The event type patterns it receives.
    pub events: &'static [&'static str],
}

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

    /// The table of `subscriptions` (what the services of a deployment declare).
    pub fn of<'a>(subscriptions: impl IntoIterator<Item = &'a Subscription>) -> Self {
        subscriptions.into_iter().fold(Self::new(), |routing, s| routing.subscribe(s.queue, s.events.iter().copied()))
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

    #[test]
    fn a_table_of_declared_subscriptions_merges_a_queue_declared_twice() {
        let routing = Routing::of(&[
            Subscription { queue: "mail", events: &["user.*"] },
            Subscription { queue: "indexer", events: &["product.upserted.v1"] },
            Subscription { queue: "mail", events: &["order.shipped.v1"] },
        ]);
        assert_eq!(routing.queues().collect::<Vec<_>>(), ["mail", "indexer"]);
        assert_eq!(routing.queues_for("order.shipped.v1").collect::<Vec<_>>(), ["mail"]);
        assert_eq!(routing.queues_for("user.registered.v1").collect::<Vec<_>>(), ["mail"]);
    }
}
