//! The order service's use-cases: what a request or a message asks of the domain and the stores,
//! callable without HTTP.

pub mod checkout;
pub mod orders;
pub mod pricing;
pub mod reconcile;
pub mod saga;
pub mod seed;
