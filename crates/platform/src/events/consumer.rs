//! The consumer loop: receives from one queue, hands each event to a handler, acknowledges what
//! succeeded, gives back what failed (visible again after a backoff; dead-lettered after the fifth
//! receive) and dead-letters at once what can never succeed. On shutdown it stops receiving and
//! finishes the batch in hand.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::bus::{BusError, Delivery, EventBus, backoff};
use super::envelope::Event;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A passing failure (a dependency down): deliver again later.
    #[error("retryable")]
    Retry(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The event can never be applied (a payload of the wrong shape): dead-letter it now.
    #[error("rejected: {0}")]
    Reject(String),
}

impl HandlerError {
    /// A retryable failure from any error.
    pub fn retry(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Retry(error.into())
    }
}

/// Applies events of one queue. It must be idempotent: an event may arrive more than once.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Applies one event.
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;

    /// Applies a batch received together; the outcome of each, in order. A handler that gains from
    /// batching (one index commit for many documents) overrides it; by default each is handled alone.
    async fn handle_batch(&self, events: &[Event]) -> Vec<Result<(), HandlerError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(tracing::Instrument::instrument(self.handle(event), event_span(event)).await);
        }
        outcomes
    }
}

/// Handles `events` with `handler`, those about different subjects (orders, SKUs) at once and
/// those about one subject one after another in the order received; the outcome of each, in
/// order. For handlers whose work for one subject must not interleave but that gain from
/// overlapping the rest (the saga's steps for many orders).
pub async fn handle_by_subject<H: EventHandler + ?Sized>(
    handler: &H,
    events: &[Event],
) -> Vec<Result<(), HandlerError>> {
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let subject = event.subject.as_deref();
        match groups.iter_mut().find(|(s, _)| subject.is_some() && *s == subject) {
            Some((_, members)) => members.push(i),
            None => groups.push((subject, vec![i])),
        }
    }
    let runs = groups.into_iter().map(|(_, members)| async move {
        let mut done = Vec::with_capacity(members.len());
        for i in members {
            let event = &events[i];
            done.push((i, tracing::Instrument::instrument(handler.handle(event), event_span(event)).await));
        }
        done
    });
    let mut outcomes: Vec<Option<Result<(), HandlerError>>> = events.iter().map(|_| None).collect();
    for (i, outcome) in futures::future::join_all(runs).await.into_iter().flatten() {
        outcomes[i] = Some(outcome);
    }
    outcomes.into_iter().map(|o| o.expect("every event is in one group")).collect()
}

/// The span of one event's handling (inside its batch's span, which names the queue): the event's
/// id and type, and the correlation id and trace id it carries from the request that caused it
/// (the `request_id` and `trace_id` of that request's lines), so a handler's lines join the trace
/// across the queue. Its subject is left out: a guest cart's id is a bearer secret; handlers record
/// the ids they read (`order.id`) on their own spans.
fn event_span(event: &Event) -> tracing::Span {
    let trace_id = event.traceparent.as_deref().and_then(crate::telemetry::trace::parse_traceparent);
    tracing::info_span!("consume", event.id = %event.id, event.kind = %event.kind,
        correlation_id = event.correlationid.as_deref().unwrap_or_default(),
        trace_id = trace_id.as_deref().unwrap_or_default())
}

/// One queue's consumer.
#[derive(Clone)]
pub struct Consumer {
    bus: Arc<dyn EventBus>,
    queue: String,
    handler: Arc<dyn EventHandler>,
    batch: usize,
    visibility: Duration,
}

impl Consumer {
    /// A consumer of `queue` running `handler`.
    pub fn new(bus: Arc<dyn EventBus>, queue: impl Into<String>, handler: Arc<dyn EventHandler>) -> Self {
        Self { bus, queue: queue.into(), handler, batch: 10, visibility: Duration::from_secs(30) }
    }

    /// Messages received at once (SQS takes at most 10 a receive).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How long a received message stays hidden: while its handler runs the consumer keeps
    /// extending it, so this is how soon a message comes back when its process dies.
    pub fn visibility(mut self, visibility: Duration) -> Self {
        self.visibility = visibility;
        self
    }

    /// Receives one batch and handles it; the number of messages received.
    pub async fn poll_once(&self) -> Result<usize, BusError> {
        let deliveries = self.bus.receive(&self.queue, self.batch, self.visibility).await?;
        let received = deliveries.len();
        self.handle_all(deliveries).await?;
        Ok(received)
    }

    /// Handles a received batch: what is not an event is dead-lettered, the events go to the
    /// handler together, and each is settled (what succeeded acknowledged at once).
    async fn handle_all(&self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let queue = self.queue.as_str();
        let mut events = Vec::with_capacity(deliveries.len());
        let mut received = Vec::with_capacity(deliveries.len());
        let mut first_error = None;
        for delivery in deliveries {
            match delivery.event() {
                Ok(event) => {
                    events.push(event);
                    received.push(delivery);
                }
                Err(error) => {
                    tracing::error!(queue, message.id = %delivery.message_id, %error, "not an event; dead-lettering");
                    metrics::counter!("events_consumed_total", "queue" => queue.to_owned(), "outcome" => "dead")
                        .increment(1);
                    if let Err(error) = self.bus.dead_letter(&delivery, &error.to_string()).await {
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        if events.is_empty() {
            return first_error.map_or(Ok(()), Err);
        }
        let batch = tracing::info_span!("consume_batch", queue, events = events.len());
        let handling = tracing::Instrument::instrument(self.handler.handle_batch(&events), batch.clone());
        let outcomes = self.keep_hidden(&received, handling).await;
        let mut handled = Vec::with_capacity(received.len());
        for ((delivery, event), result) in received.iter().zip(&events).zip(outcomes) {
            if result.is_ok() {
                handled.push(delivery);
                continue;
            }
            let span = batch.in_scope(|| event_span(event));
            if let Err(error) = tracing::Instrument::instrument(self.settle(delivery, result), span).await {
                first_error.get_or_insert(error);
            }
        }
        // What succeeded is acknowledged together (one write on the embedded queue).
        let acked = if handled.is_empty() { Vec::new() } else { self.bus.ack_batch(&handled).await };
        let mut ok = 0;
        for outcome in acked {
            match outcome {
                Ok(()) => ok += 1,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        metrics::counter!("events_consumed_total", "queue" => queue.to_owned(), "outcome" => "ok").increment(ok);
        first_error.map_or(Ok(()), Err)
    }

    /// Runs `handling` while keeping `deliveries` hidden: every third of the visibility timeout
    /// their visibility is extended by a whole timeout. So a short timeout covers a slow handler
    /// while the process lives, and a crashed process's messages come back within one timeout,
    /// not after the slowest handling anyone could imagine.
    async fn keep_hidden<T>(&self, deliveries: &[Delivery], handling: impl Future<Output = T>) -> T {
        let every = (self.visibility / 3).max(Duration::from_millis(50));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(handling);
        loop {
            tokio::select! {
                outcome = &mut handling => return outcome,
                _ = heartbeat.tick() => {
                    let held: Vec<&Delivery> = deliveries.iter().collect();
                    if let Err(error) = self.bus.extend(&held, self.visibility).await {
                        tracing::warn!(queue = %self.queue, error = %crate::error::cause_chain(&error),
                            "could not keep messages being handled hidden");
                    }
                }
            }
        }
    }

    async fn settle(&self, delivery: &Delivery, result: Result<(), HandlerError>) -> Result<(), BusError> {
        let queue = self.queue.as_str();
        let outcome = match result {
            Ok(()) => {
                self.bus.ack(delivery).await?;
                "ok"
            }
            Err(HandlerError::Retry(error)) => {
                let delay = backoff(delivery.receive_count);
                tracing::warn!(error = %crate::error::cause_chain(error.as_ref()), receive_count = delivery.receive_count,
                    retry_in_ms = delay.as_millis() as u64, "event handler failed; will retry");
                self.bus.nack(delivery, delay).await?;
                "retry"
            }
            Err(HandlerError::Reject(reason)) => {
                tracing::error!(%reason, "event rejected; dead-lettering");
                self.bus.dead_letter(delivery, &reason).await?;
                "dead"
            }
        };
        metrics::counter!("events_consumed_total", "queue" => queue.to_owned(), "outcome" => outcome).increment(1);
        Ok(())
    }

    /// Runs until `shutdown`: the batch being handled is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(error) = self.bus.ensure_queue(&self.queue).await {
            tracing::error!(queue = %self.queue, error = %crate::error::cause_chain(&error), "cannot make the queue");
        }
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // A receive is never dropped half-way: messages it has claimed would stay hidden for
            // the visibility timeout. On shutdown the receive in hand finishes (at most its long
            // poll), its messages are handled, and the loop stops.
            let receive = self.bus.receive(&self.queue, self.batch, self.visibility);
            tokio::pin!(receive);
            let deliveries = tokio::select! {
                result = &mut receive => result,
                () = shutdown.cancelled() => receive.await,
            };
            match deliveries {
                Ok(deliveries) => {
                    if let Err(error) = self.handle_all(deliveries).await {
                        tracing::warn!(queue = %self.queue, error = %crate::error::cause_chain(&error), "could not settle a message");
                    }
                }
                Err(error) => {
                    tracing::warn!(queue = %self.queue, error = %crate::error::cause_chain(&error), "receive failed; backing off");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!(queue = %self.queue, "consumer stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;

    use super::*;
    use crate::events::routing::Routing;
    use crate::events::sqlite::SqliteQueue;

    struct Slow(Arc<AtomicU32>);

    #[async_trait]
    impl EventHandler for Slow {
        async fn handle(&self, _: &Event) -> Result<(), HandlerError> {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Logs one line in a span of its own with the order id it read, as the services' handlers do.
    struct Logs;

    #[async_trait]
    impl EventHandler for Logs {
        #[tracing::instrument(skip_all, fields(order.id))]
        async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
            let order_id = event.data["order_id"].as_str().unwrap_or_default();
            tracing::Span::current().record("order.id", order_id);
            tracing::info!("handled");
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_handlers_lines_carry_the_events_ids_and_the_trace_of_its_cause() {
        let logs = crate::testing::capture_logs("info");
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(
            SqliteQueue::open(dir.path().join("events.db"), Routing::new(), Duration::from_millis(50)).unwrap(),
        );
        let request = crate::telemetry::trace::TraceContext::new_root();
        let event = Event::new("t.v1", "test", json!({"order_id": "o-1"})).with_trace(&request);
        bus.send("q", &event).await.unwrap();
        Consumer::new(bus.clone(), "q", Arc::new(Logs)).poll_once().await.unwrap();

        let lines = logs.with_message("handled");
        assert_eq!(lines.len(), 1, "{:?}", logs.lines());
        let field = |name| crate::testing::log_field(&lines[0], name).and_then(|v| v.as_str()).unwrap_or_default();
        assert_eq!(field("order.id"), "o-1");
        assert_eq!(field("event.id"), event.id);
        assert_eq!(field("event.kind"), "t.v1");
        assert_eq!(field("trace_id"), request.trace_id);
        assert_eq!(field("correlation_id"), request.request_id);
        assert_eq!(field("queue"), "q");
    }

    /// Takes `ms` to handle each batch.
    struct Takes(u64);

    #[async_trait]
    impl EventHandler for Takes {
        async fn handle(&self, _: &Event) -> Result<(), HandlerError> {
            tokio::time::sleep(Duration::from_millis(self.0)).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_handler_slower_than_the_visibility_keeps_its_message_hidden_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(
            SqliteQueue::open(dir.path().join("events.db"), Routing::new(), Duration::from_millis(10)).unwrap(),
        );
        bus.send("q", &Event::new("t.v1", "test", json!({}))).await.unwrap();
        // Handling takes five visibility timeouts.
        let slow = Consumer::new(bus.clone(), "q", Arc::new(Takes(750))).visibility(Duration::from_millis(150));
        let handling = tokio::spawn(async move { slow.poll_once().await });
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let taken = bus.receive("q", 10, Duration::from_secs(30)).await.unwrap();
            assert!(taken.is_empty(), "a second consumer took the message being handled");
        }
        assert_eq!(handling.await.unwrap().unwrap(), 1);
        assert!(bus.receive("q", 10, Duration::from_secs(30)).await.unwrap().is_empty(), "acknowledged");
    }

    #[tokio::test]
    async fn a_message_whose_handler_died_comes_back_within_one_visibility_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(
            SqliteQueue::open(dir.path().join("events.db"), Routing::new(), Duration::from_millis(10)).unwrap(),
        );
        bus.send("q", &Event::new("t.v1", "test", json!({}))).await.unwrap();
        let stuck = Consumer::new(bus.clone(), "q", Arc::new(Takes(60_000))).visibility(Duration::from_millis(200));
        let handling = tokio::spawn(async move { stuck.poll_once().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The process dies mid-handling: no more heartbeats.
        handling.abort();
        let died = std::time::Instant::now();
        loop {
            if !bus.receive("q", 10, Duration::from_secs(30)).await.unwrap().is_empty() {
                break;
            }
            assert!(died.elapsed() < Duration::from_secs(2), "the message never came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn shutdown_finishes_the_event_in_hand_and_acknowledges_it() {
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(
            SqliteQueue::open(dir.path().join("events.db"), Routing::new(), Duration::from_millis(50)).unwrap(),
        );
        bus.send("q", &Event::new("t.v1", "test", json!({}))).await.unwrap();
        let handled = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let consumer = Consumer::new(bus.clone(), "q", Arc::new(Slow(handled.clone())));
        let task = tokio::spawn(consumer.run(shutdown.clone()));
        // Stop while the handler is mid-way through the event.
        tokio::time::sleep(Duration::from_millis(150)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(handled.load(Ordering::SeqCst), 1);
        // It was acknowledged, not left to come back after its visibility timeout.
        let again = bus.receive("q", 10, Duration::from_secs(30)).await.unwrap();
        assert!(again.is_empty());
        assert!(bus.dead_letters("q", 10).await.unwrap().is_empty());
    }
}
