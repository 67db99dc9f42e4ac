//! The `EventBus` port: publish, receive with a visibility timeout, acknowledge or give back, dead
//! letters and their redrive. Both adapters give SQS's semantics: at-least-once delivery, a message
//! received and not acknowledged comes back after its visibility timeout, and one received five times
//! without success moves to the queue's dead-letter queue.

use std::time::Duration;

use async_trait::async_trait;

use super::envelope::{EnvelopeError, Event};

/// Receives after which a message goes to the dead-letter queue (the SQS redrive `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

/// The largest message body a queue takes, in bytes: the SQS queues' `MaximumMessageSize`, set
/// explicitly by the CDK app (SQS's own ceiling is higher); the embedded queue holds to it too, so
/// an event too large for AWS is refused on a laptop as well.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Why a queue would refuse `body` for good (too large, or characters outside what SQS accepts:
/// tab, newline, carriage return, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF); `None` when
/// it can be sent. Every bus checks it, so no adapter takes what another would refuse.
pub fn refusal(body: &str) -> Option<String> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Some(format!("the message is {} bytes, over the queue's limit of {MAX_MESSAGE_BYTES}", body.len()));
    }
    body.chars()
        .find(|c| !sendable(*c))
        .map(|c| format!("the message contains U+{:04X}, which a queue does not carry", u32::from(c)))
}

/// Whether SQS carries `c` in a message body.
pub fn sendable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A failure of the bus itself (not of a handler).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The embedded queue's database failed.
    #[error("event queue database")]
    Db(#[from] crate::sqlite::DbError),
    /// SQS failed.
    #[error("SQS {operation}")]
    Sqs {
        /// The API call.
        operation: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A service's outbox table could not be read or cleared.
    #[error("outbox")]
    Outbox(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The queue does not exist.
    #[error("no queue named {0}")]
    UnknownQueue(String),
    /// The receipt is stale: the message was received again (or is gone) since.
    #[error("stale receipt for message {0}")]
    StaleReceipt(String),
    /// The bus refuses this message for good (too large, characters it does not carry): sending it
    /// again can never succeed.
    #[error("the bus refuses the message: {0}")]
    Refused(String),
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The queue it came from.
    pub queue: String,
    /// The bus's id of the message (not the event id: the same event may be two messages).
    pub message_id: String,
    /// The handle that acknowledges this receive.
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// The raw body.
    pub body: String,
}

impl Delivery {
    /// The envelope.
    pub fn event(&self) -> Result<Event, EnvelopeError> {
        Event::from_json(&self.body)
    }
}

/// A message in a dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The bus's id of the dead message.
    pub message_id: String,
    /// The queue it died on.
    pub queue: String,
    /// The raw body.
    pub body: String,
    /// Receives before it died.
    pub receive_count: u32,
    /// Why it died, where the bus knows.
    pub reason: Option<String>,
}

/// The event bus port.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Makes `queue` (and its dead-letter queue) exist.
    async fn ensure_queue(&self, queue: &str) -> Result<(), BusError>;

    /// Puts a copy of `event` on every queue its type is routed to.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;

    /// Publishes `events` in order; the number published before a failure stops it (all of them on
    /// success). A [`BusError::Refused`] names the event at that number, which nothing published. Buses that can write many at once (one transaction) override it.
    async fn publish_batch(&self, events: &[Event]) -> (usize, Result<(), BusError>) {
        for (i, event) in events.iter().enumerate() {
            if let Err(error) = self.publish(event).await {
                return (i, Err(error));
            }
        }
        (events.len(), Ok(()))
    }

    /// Puts `event` on `queue` alone.
    async fn send(&self, queue: &str, event: &Event) -> Result<(), BusError>;

    /// Receives up to `max` visible messages from `queue`, hiding them for `visibility`. May wait
    /// briefly (a long poll) when the queue is empty.
    async fn receive(&self, queue: &str, max: usize, visibility: Duration) -> Result<Vec<Delivery>, BusError>;

    /// Deletes a handled message.
    async fn ack(&self, delivery: &Delivery) -> Result<(), BusError>;

    /// Deletes handled messages; each one's outcome, in order. Buses that can delete many at once
    /// override it.
    async fn ack_batch(&self, deliveries: &[&Delivery]) -> Vec<Result<(), BusError>> {
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(self.ack(delivery).await);
        }
        outcomes
    }

    /// Gives a message back, visible again after `delay`.
    async fn nack(&self, delivery: &Delivery, delay: Duration) -> Result<(), BusError>;

    /// Keeps messages being handled hidden for `visibility` more, from now (the consumer's
    /// heartbeat while a slow handler runs). Buses that can change many at once override it.
    async fn extend(&self, deliveries: &[&Delivery], visibility: Duration) -> Result<(), BusError> {
        for delivery in deliveries {
            self.nack(delivery, visibility).await?;
        }
        Ok(())
    }

    /// Moves a message that can never succeed to the dead-letter queue at once.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), BusError>;

    /// Up to `limit` messages of `queue`'s dead-letter queue, oldest first, left in place.
    async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>, BusError>;

    /// Moves every dead letter of `queue` back onto it; the number moved.
    async fn redrive(&self, queue: &str) -> Result<usize, BusError>;

    /// Whether a queue delivers in publication order (the embedded queue does; SQS standard queues
    /// do not).
    fn ordered(&self) -> bool;

    /// Whether the bus answers (for `/ready`).
    async fn ping(&self) -> Result<(), BusError>;
}

/// The delay before redelivering a failed message: exponential in its receives, capped at a minute.
pub fn backoff(receive_count: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << receive_count.min(7))).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_refuses_what_sqs_would() {
        assert_eq!(refusal("{\"a\":\"caf\u{e9} \u{1F600}\t\"}"), None);
        let odd = refusal("{\"email\":\"a\u{FFFE}@b.c\"}").unwrap();
        assert!(odd.contains("U+FFFE"), "{odd}");
        assert!(refusal("\u{FFFF}").is_some());
        assert!(refusal("\u{1}").is_some());
        assert_eq!(refusal(&"x".repeat(MAX_MESSAGE_BYTES)), None);
        let large = refusal(&"x".repeat(MAX_MESSAGE_BYTES + 1)).unwrap();
        assert!(large.contains("over the queue's limit"), "{large}");
    }
}
