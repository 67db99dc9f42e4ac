//! Inventory types and rules, free of I/O.

use serde::Serialize;

/// The stock of one SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units promised to orders not yet confirmed.
    pub reserved: i64,
    /// At or under this many available units the SKU is low on stock.
    pub low_stock_threshold: i64,
}

impl Stock {
    /// Units that can still be sold.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved).max(0)
    }
}

/// `GET /v1/inventory/{sku}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AvailabilityResponse {
    /// The SKU.
    pub sku: String,
    /// Units that can be sold now.
    pub available: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_is_on_hand_less_reserved() {
        assert_eq!(Stock { on_hand: 10, reserved: 3, low_stock_threshold: 2 }.available(), 7);
        assert_eq!(Stock { on_hand: 3, reserved: 3, low_stock_threshold: 0 }.available(), 0);
    }
}
