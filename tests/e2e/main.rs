//! End-to-end tests: the whole platform driven over HTTP.

mod conventions;
mod operations;
mod services;
