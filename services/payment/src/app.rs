//! The use-cases: what a command, a request or a provider's webhook asks of a payment, callable
//! without HTTP or a queue.

pub mod payments;
