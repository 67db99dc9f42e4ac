//! The payment service's integration tests: the store conformance suite (SQLite and PostgreSQL),
//! the saga's payment steps with the simulated provider, and the Stripe adapter against a stub
//! server answering as Stripe's API reference documents.

mod conformance;
mod flows;
mod stripe;
