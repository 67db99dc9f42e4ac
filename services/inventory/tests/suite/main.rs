//! The inventory service's integration tests: the store conformance suite (SQLite and DynamoDB)
//! and the saga's command handler and expiry sweeper over the embedded queue.

mod commands;
mod conformance;
