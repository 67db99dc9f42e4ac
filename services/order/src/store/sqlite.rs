//! The embedded (SQLite) stores: orders with their saga state, and carts, in the service's one
//! database (placing an order empties its cart in the same transaction).

mod carts;
mod orders;
mod pricing;

pub use carts::SqliteCartStore;
pub use orders::SqliteOrderStore;
pub use pricing::SqlitePricingStore;
