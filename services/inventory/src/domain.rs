//! Inventory types and rules, free of I/O: stock levels, reservations, the ledger, the checks of a
//! reservation request and the events a change of stock makes.

use chrono::{DateTime, Utc};
use platform::contracts::inventory::{
    Changed, Committed, Line, MAX_LINES, MAX_QUANTITY, Rejected, Released, Reserved, Shortage, ThresholdCrossed,
};
use platform::events::Event;
use serde::Serialize;

use crate::NAME;

/// The stock of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stock {
    /// The SKU.
    pub sku: String,
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units promised to orders not yet confirmed.
    pub reserved: i64,
    /// At or under this many available units the SKU is low on stock.
    pub low_stock_threshold: i64,
    /// Grows by one with every change.
    pub version: i64,
}

impl Stock {
    /// A SKU with nothing on hand.
    pub fn empty(sku: impl Into<String>) -> Self {
        Self { sku: sku.into(), on_hand: 0, reserved: 0, low_stock_threshold: 0, version: 0 }
    }

    /// Units that can still be sold.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Whether available units are at or under the threshold.
    pub fn is_low(&self) -> bool {
        self.available() <= self.low_stock_threshold
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Units held until it expires.
    Held,
    /// Nothing held: some SKUs were short.
    Rejected,
    /// The held units left stock (the order is confirmed).
    Committed,
    /// The held units are available again (released, expired, or released before it was made).
    Released,
    /// The committed units went back on hand (an order cancelled after confirmation).
    Returned,
}

impl ReservationStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Rejected => "rejected",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Returned => "returned",
        }
    }

    /// The status of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "held" => Self::Held,
            "rejected" => Self::Rejected,
            "committed" => Self::Committed,
            "released" => Self::Released,
            "returned" => Self::Returned,
            _ => return None,
        })
    }
}

/// `time` to the millisecond, as the stores keep times.
pub fn stamp(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

pub use platform::contracts::MAX_ORDER_ID;

/// Why a reservation's units came back.
pub const EXPIRED: &str = "expired";

/// One order's reservation: what it asked for, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reservation {
    /// The order.
    pub order_id: String,
    /// Where it stands.
    pub status: ReservationStatus,
    /// What it holds (or asked for, when rejected).
    pub lines: Vec<Line>,
    /// The short SKUs of a rejection.
    pub short: Vec<Shortage>,
    /// Why its units came back (`expired` or the release command's reason).
    pub release_reason: Option<String>,
    /// When a hold lapses.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What an entry of the ledger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// An admin set the units on hand (the delta is the difference).
    Set,
    /// An admin adjusted the units on hand by a delta, with a reason.
    Adjust,
    /// A confirmed order's units left the warehouse.
    Sale,
    /// A cancelled order's units came back.
    Return,
}

impl LedgerKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Set => "set",
            Self::Adjust => "adjust",
            Self::Sale => "sale",
            Self::Return => "return",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "set" => Self::Set,
            "adjust" => Self::Adjust,
            "sale" => Self::Sale,
            "return" => Self::Return,
            _ => return None,
        })
    }
}

/// One change of a SKU's units on hand. Entries are only ever appended, and a SKU's entries add up
/// to its units on hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    /// Orders the SKU's entries (larger is later).
    pub seq: i64,
    /// The SKU.
    pub sku: String,
    /// Units added (negative: removed).
    pub delta: i64,
    /// What it records.
    pub kind: LedgerKind,
    /// Why (an admin's reason, an order's release reason, `seed`).
    pub reason: String,
    /// Who or what: the admin's user id, or the order id.
    pub reference: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a request to hold stock is refused before it reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    /// No line.
    #[error("a reservation needs at least one line")]
    Empty,
    /// More lines than one reservation may hold.
    #[error("a reservation holds at most {MAX_LINES} SKUs")]
    TooMany,
    /// A SKU that is not a valid SKU.
    #[error("{0:?} is not a valid SKU")]
    BadSku(String),
    /// A quantity out of range.
    #[error("quantities are 1 to {MAX_QUANTITY}, not {0}")]
    BadQuantity(i64),
}

/// `lines` checked, with the lines of one SKU merged (in the order of first appearance).
pub fn normalize_lines(lines: &[Line]) -> Result<Vec<Line>, LinesError> {
    let mut merged: Vec<Line> = Vec::with_capacity(lines.len());
    for line in lines {
        if !platform::sku::is_valid(&line.sku) {
            return Err(LinesError::BadSku(line.sku.clone()));
        }
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(LinesError::BadQuantity(line.quantity));
        }
        match merged.iter_mut().find(|l| l.sku == line.sku) {
            Some(existing) => {
                existing.quantity += line.quantity;
                if existing.quantity > MAX_QUANTITY {
                    return Err(LinesError::BadQuantity(existing.quantity));
                }
            }
            None => merged.push(line.clone()),
        }
    }
    if merged.is_empty() {
        return Err(LinesError::Empty);
    }
    if merged.len() > MAX_LINES {
        return Err(LinesError::TooMany);
    }
    Ok(merged)
}

/// The short lines of a request against the stock read (`None`: the SKU is unknown).
pub fn shortages<'a>(lines: &[Line], stock: impl Fn(&str) -> Option<&'a Stock>) -> Vec<Shortage> {
    lines
        .iter()
        .filter_map(|line| {
            let available = stock(&line.sku).map_or(0, Stock::available);
            (available < line.quantity).then(|| Shortage {
                sku: line.sku.clone(),
                requested: line.quantity,
                available: available.max(0),
            })
        })
        .collect()
}

/// `inventory.changed.v1` for the stock as it is now.
pub fn changed_event(stock: &Stock) -> Event {
    let data = Changed {
        sku: stock.sku.clone(),
        available: stock.available(),
        on_hand: stock.on_hand,
        reserved: stock.reserved,
        version: stock.version,
    };
    Event::new(Changed::KIND, NAME, data).with_subject(stock.sku.clone())
}

/// Which way, if any, a change moved a SKU across its low-stock threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Fell to the threshold or under.
    Low,
    /// Rose above it.
    Restocked,
}

impl Crossing {
    /// The crossing (if any) from `before` to `after`: whether the SKU is low at each.
    pub fn between(was_low: bool, is_low: bool) -> Option<Self> {
        match (was_low, is_low) {
            (false, true) => Some(Self::Low),
            (true, false) => Some(Self::Restocked),
            _ => None,
        }
    }

    /// The event of this crossing for `sku` at `threshold`.
    pub fn event(self, sku: &str, threshold: i64) -> Event {
        let kind = match self {
            Self::Low => ThresholdCrossed::LOW_STOCK,
            Self::Restocked => ThresholdCrossed::RESTOCKED,
        };
        Event::new(kind, NAME, ThresholdCrossed { sku: sku.to_owned(), threshold }).with_subject(sku.to_owned())
    }
}

/// The events of a change of one SKU from `before` (`None`: a new SKU, which counts as empty and
/// not low) to `after`: `changed`, and a threshold crossing if any.
pub fn stock_events(before: Option<&Stock>, after: &Stock) -> Vec<Event> {
    let mut events = vec![changed_event(after)];
    let was_low = before.is_some_and(Stock::is_low);
    if let Some(crossing) = Crossing::between(was_low, after.is_low()) {
        events.push(crossing.event(&after.sku, after.low_stock_threshold));
    }
    events
}

/// `event`, tied to its `cause` (the command it answers) if any.
pub fn caused(event: Event, cause: Option<&Event>) -> Event {
    event.with_cause(cause)
}

/// The saga's answer for `reservation` in its new state: `reserved`, `rejected`, `committed` or
/// `released`.
pub fn reservation_event(reservation: &Reservation) -> Event {
    let order_id = reservation.order_id.clone();
    let lines = reservation.lines.clone();
    let event = match reservation.status {
        ReservationStatus::Held => {
            Event::new(Reserved::KIND, NAME, Reserved { order_id, lines, expires_at: reservation.expires_at })
        }
        ReservationStatus::Rejected => {
            Event::new(Rejected::KIND, NAME, Rejected { order_id, short: reservation.short.clone() })
        }
        ReservationStatus::Committed => Event::new(Committed::KIND, NAME, Committed { order_id, lines }),
        ReservationStatus::Released | ReservationStatus::Returned => Event::new(
            Released::KIND,
            NAME,
            Released {
                order_id,
                lines,
                reason: reservation.release_reason.clone().unwrap_or_default(),
                returned: reservation.status == ReservationStatus::Returned,
            },
        ),
    };
    event.with_subject(reservation.order_id.clone())
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

    fn stock(on_hand: i64, reserved: i64, threshold: i64) -> Stock {
        Stock { sku: "A".into(), on_hand, reserved, low_stock_threshold: threshold, version: 1 }
    }

    fn line(sku: &str, quantity: i64) -> Line {
        Line { sku: sku.into(), quantity }
    }

    #[test]
    fn available_is_on_hand_less_reserved() {
        assert_eq!(stock(10, 3, 2).available(), 7);
        assert!(!stock(10, 3, 2).is_low());
        assert!(stock(5, 3, 2).is_low());
    }

    #[test]
    fn lines_of_one_sku_merge_and_bad_lines_are_refused() {
        let merged = normalize_lines(&[line("A", 2), line("B", 1), line("A", 3)]).unwrap();
        assert_eq!(merged, vec![line("A", 5), line("B", 1)]);
        assert_eq!(normalize_lines(&[]), Err(LinesError::Empty));
        assert_eq!(normalize_lines(&[line("A", 0)]), Err(LinesError::BadQuantity(0)));
        assert_eq!(normalize_lines(&[line("A", MAX_QUANTITY), line("A", 1)]), Err(LinesError::BadQuantity(10_001)));
        assert_eq!(normalize_lines(&[line("a b", 1)]), Err(LinesError::BadSku("a b".into())));
        let many: Vec<Line> = (0..=MAX_LINES).map(|i| line(&format!("S{i}"), 1)).collect();
        assert_eq!(normalize_lines(&many), Err(LinesError::TooMany));
    }

    #[test]
    fn shortages_name_each_short_sku_with_what_was_there() {
        let a = stock(3, 1, 0);
        let short = shortages(&[line("A", 3), line("B", 1)], |sku| (sku == "A").then_some(&a));
        assert_eq!(
            short,
            vec![
                Shortage { sku: "A".into(), requested: 3, available: 2 },
                Shortage { sku: "B".into(), requested: 1, available: 0 },
            ]
        );
        assert!(shortages(&[line("A", 2)], |_| Some(&a)).is_empty());
    }

    #[test]
    fn crossing_the_threshold_either_way_makes_one_event() {
        let kinds = |events: Vec<Event>| events.into_iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(stock_events(Some(&stock(10, 0, 2)), &stock(10, 8, 2))),
            ["inventory.changed.v1", "inventory.low_stock.v1"]
        );
        assert_eq!(
            kinds(stock_events(Some(&stock(10, 8, 2)), &stock(10, 7, 2))),
            ["inventory.changed.v1", "inventory.restocked.v1"]
        );
        assert_eq!(kinds(stock_events(Some(&stock(10, 0, 2)), &stock(10, 1, 2))), ["inventory.changed.v1"]);
        // A new SKU set to nothing is low from the start.
        assert_eq!(kinds(stock_events(None, &stock(0, 0, 0))), ["inventory.changed.v1", "inventory.low_stock.v1"]);
        let changed: Changed = stock_events(None, &stock(4, 1, 0))[0].data_as().unwrap();
        assert_eq!(changed, Changed { sku: "A".into(), available: 3, on_hand: 4, reserved: 1, version: 1 });
    }
}
