//! Events between services: the CloudEvents envelope ([`Event`]), the [`EventBus`] port with its
//! durable SQLite queue ([`sqlite::SqliteQueue`]) and SQS ([`sqs::SqsBus`]) adapters, the routing of
//! event types to consumer queues ([`routing`]), the outbox relay ([`outbox`]) and the consumer loop
//! ([`consumer`]). Delivery is at least once; consumers are idempotent through the inbox
//! ([`crate::sqlite::inbox_claim`], [`crate::postgres::inbox_claim`]).

pub mod bus;
pub mod consumer;
pub mod envelope;
pub mod outbox;
pub mod routing;
pub mod sqlite;
pub mod sqs;

pub use bus::{BusError, DeadLetter, Delivery, EventBus};
pub use consumer::{Consumer, EventHandler, HandlerError, handle_by_subject};
pub use envelope::Event;
pub use routing::{Routing, Subscription};
