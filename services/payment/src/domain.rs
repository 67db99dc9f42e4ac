//! Payment rules, free of I/O.

pub mod change;
pub mod payment;
pub mod webhook;
