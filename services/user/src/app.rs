//! The use-cases outside a request's own handler: making an admin (`shop admin create`), the
//! access-token signing keys, and the emails an account's and an order's events call for.

pub mod admin;
pub mod keys;
pub mod mail;
