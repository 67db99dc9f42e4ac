//! End-to-end tests: the whole platform driven over HTTP.

mod carts;
mod catalog;
mod checkout;
mod conventions;
mod inventory;
mod operations;
mod payments;
mod pricing;
mod saga;
mod search;
mod services;
mod storefront;
