//! The user service's integration tests: the store conformance suites on every adapter, and the
//! HTTP API driven through the real router on the SQLite and PostgreSQL stores.

// `instantiate!` (from `conformance`) runs the HTTP suite too.
#[macro_use]
mod conformance;
mod cognito;
mod failover;
mod http;
mod mail;
