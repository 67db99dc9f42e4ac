//! The common crate of the shop services.
//!
//! Every service builds on the same pieces: layered configuration ([`config`]), JSON-lines logs and
//! metrics ([`telemetry`]), the HTTP conventions of the public API ([`http`]), the event bus with its
//! outbox and inbox ([`events`]), the object store ([`objects`]), the cache ([`cache`]), embedded and
//! PostgreSQL data access ([`sqlite`], [`postgres`]), and the internal service client ([`client`]).
//! No module here depends on a service; services depend only on this crate.

pub mod address;
pub mod auth;
pub mod aws;
pub mod cache;
pub mod client;
pub mod config;
pub mod contracts;
pub mod dynamodb;
pub mod email;
pub mod error;
pub mod events;
pub mod http;
pub mod infra;
pub mod money;
pub mod objects;
pub mod pci;
pub mod postgres;
pub mod sku;
pub mod sqlite;
pub mod telemetry;
/// Test support, built only for tests (the `testing` feature): never part of a release binary.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::Config;
pub use infra::Infra;

/// Installs the process-wide TLS crypto provider (aws-lc-rs, the one the AWS SDK, object_store and
/// sqlx are built with). Call it first thing in `main`; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
