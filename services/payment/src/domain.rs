//! Payment rules, free of I/O.

pub mod payment;
pub mod webhook;
