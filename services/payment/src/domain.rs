//! Payment rules, free of I/O.

pub mod webhook;
