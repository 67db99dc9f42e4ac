//! The order state machine: what each thing that can happen to an order (an answer of the
//! inventory or the payment, the shopper's cancellation, an admin's delivery, a deadline passing)
//! does to it in each status: the statuses it moves through, the deadline it then keeps and the
//! commands it sends. Pure: [`transition`] reads an order's status and a few facts of its
//! history; the saga (`app::saga`) applies what it answers, in one transaction conditional on the
//! status the order moves from.

use platform::contracts::order::OrderEvent;

use super::order::{
    MONEY_RELEASED, NOTHING_TO_PAY, Order, OrderStatus, PAYMENT_CAPTURED, STOCK_COMMITTED, STOCK_RELEASED,
};

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaEvent {
    /// The stock is held (`inventory.reserved.v1`).
    Reserved,
    /// Some stock is missing (`inventory.rejected.v1`).
    OutOfStock,
    /// The payment is authorized (`payment.authorized.v1`).
    Authorized,
    /// The payment was refused (`payment.failed.v1`), for this reason (the decline code, else the
    /// error code).
    PaymentFailed(String),
    /// The money is taken (`payment.captured.v1`).
    Captured,
    /// The stock is taken (`inventory.committed.v1`).
    Committed,
    /// The stock went back (`inventory.released.v1`).
    Released,
    /// The money went back (`payment.voided.v1`, `payment.refunded.v1`).
    MoneyReleased,
    /// The stock could not be committed (`inventory.commit_failed.v1`), for this reason.
    CommitFailed(String),
    /// The money could not be captured (`payment.capture_failed.v1`), for this reason.
    CaptureFailed(String),
    /// The shopper cancels it.
    Cancel,
    /// An admin marks it delivered.
    Deliver,
    /// Its deadline passed (the sweeper).
    Overdue,
}

impl SagaEvent {
    /// One of each, for tables and tests.
    pub fn examples() -> [Self; 13] {
        [
            Self::Reserved,
            Self::OutOfStock,
            Self::Authorized,
            Self::PaymentFailed("card_declined".into()),
            Self::Captured,
            Self::Committed,
            Self::Released,
            Self::MoneyReleased,
            Self::CommitFailed("released".into()),
            Self::CaptureFailed("voided".into()),
            Self::Cancel,
            Self::Deliver,
            Self::Overdue,
        ]
    }
}

/// What of an order's history the rules read besides its status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Whether there is money to take (a total above zero).
    pub needs_payment: bool,
    /// Whether its stock is committed.
    pub committed: bool,
    /// Whether its payment is captured (or there was none to take).
    pub captured: bool,
    /// The compensations it still waits to hear answered ([`STOCK_RELEASED`], [`MONEY_RELEASED`]).
    pub unanswered: Vec<&'static str>,
    /// Why it reached its status, if said.
    pub reason: Option<String>,
}

impl Facts {
    /// The facts of `order`.
    pub fn of(order: &Order) -> Self {
        Self {
            needs_payment: order.needs_payment(),
            committed: order.is_committed(),
            captured: order.is_captured(),
            unanswered: order.unanswered_compensations(),
            reason: order.status_reason().map(str::to_owned),
        }
    }
}

/// A message the saga sends about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Hold its stock (`inventory.reserve.v1`).
    Reserve,
    /// Authorize its total (`payment.authorize.v1`).
    Authorize,
    /// Take its held stock (`inventory.commit.v1`).
    Commit,
    /// Take its authorized money (`payment.capture.v1`).
    Capture,
    /// Give its stock back, for this reason (`inventory.release.v1`).
    Release(String),
    /// Give its money back, for this reason (`payment.void.v1`: a void, or a refund once captured).
    Void(String),
    /// Tell whoever listens that it reached a status (`order.*.v1`, of this kind), for a reason.
    Tell(&'static str, OrderStatus, Option<String>),
}

/// The deadline an order keeps after a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The step timeout of the status it waits in ([`super::order::step_timeout`]).
    Step(OrderStatus),
    /// The time its compensations have to answer before they are sent again.
    Compensation,
    /// The audit of a settled order, some step timeouts on.
    Audit,
    /// The one it had.
    Keep,
}

/// What a refused commit or capture of a settled order is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A commit the inventory refused.
    Commit,
    /// A capture the payment refused.
    Capture,
}

/// What an event does to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// One transaction: the order, if still in one of `from`, goes through `steps` (each a status
    /// and the reason recorded with it; a step of its own status marks its history), keeps
    /// `deadline`, and sends `commands`.
    Move {
        /// The statuses it may move from.
        from: Vec<OrderStatus>,
        /// What its history records, in order; empty to send without moving.
        steps: Vec<(OrderStatus, Option<String>)>,
        /// The deadline it keeps.
        deadline: Deadline,
        /// What it sends.
        commands: Vec<Command>,
    },
    /// It ships: its label made, then a move to `shipped` (the saga's only step with I/O).
    Ship,
    /// A settled order's audit heard a refusal: what it says against the rules is marked and
    /// reported, once per rule.
    Audit(Refused, String),
    /// The sweeper's audit of a settled order: the commands that set it right if the world
    /// disagrees (the reconciler's rules).
    Reconcile,
    /// Nothing to do: an answer already heard, or one that no longer matters.
    Ignore,
    /// Not allowed in its status (the shopper or an admin asked for it).
    Refuse,
}

/// The commands of cancelling an order for `reason`: its stock released, its money voided (or
/// refunded, once captured), the shopper told.
pub fn cancellation(reason: &str) -> Vec<Command> {
    vec![
        Command::Release(reason.into()),
        Command::Void(reason.into()),
        Command::Tell(OrderEvent::CANCELLED, OrderStatus::Cancelled, Some(reason.into())),
    ]
}

/// The move of an order in `from` to `status` (cancelled, or payment failed) for `reason`, its
/// compensations given time to answer.
fn compensate(from: &[OrderStatus], status: OrderStatus, reason: &str, commands: Vec<Command>) -> Transition {
    Transition::Move {
        from: from.to_vec(),
        steps: vec![(status, Some(reason.into()))],
        deadline: Deadline::Compensation,
        commands,
    }
}

/// A cancellation of a confirmed order (the sweeper's, or the saga's when a commit or a capture
/// can never succeed).
fn cancel(from: &[OrderStatus], reason: &str) -> Transition {
    compensate(from, OrderStatus::Cancelled, reason, cancellation(reason))
}

/// Commands sent about an order in `status` without moving it.
fn send(status: OrderStatus, commands: Vec<Command>) -> Transition {
    Transition::Move { from: vec![status], steps: Vec::new(), deadline: Deadline::Keep, commands }
}

/// `mark` recorded in the history of an order in `status`, its status kept. The deadline stays,
/// unless the mark was the last compensation awaited: then the order is settled, and audited
/// later.
fn mark(status: OrderStatus, facts: &Facts, mark: &'static str) -> Transition {
    let last = facts.unanswered == [mark];
    Transition::Move {
        from: vec![status],
        steps: vec![(status, Some(mark.into()))],
        deadline: if last { Deadline::Audit } else { Deadline::Keep },
        commands: Vec::new(),
    }
}

/// Whether an order in `status` will not ship (its stock and money must go back).
fn will_not_ship(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::PaymentFailed)
}

/// The compensations of an order that will not ship that have not answered yet, sent again with
/// the reason they were first sent with.
pub fn missing_compensations(status: OrderStatus, facts: &Facts) -> Vec<Command> {
    let reason = match status {
        OrderStatus::PaymentFailed => "payment_failed",
        _ => facts.reason.as_deref().unwrap_or("cancelled"),
    };
    let release = |mark: &&str| {
        if *mark == STOCK_RELEASED { Command::Release(reason.into()) } else { Command::Void(reason.into()) }
    };
    facts.unanswered.iter().map(release).collect()
}

/// The commands that move a confirmed order on: what has not answered yet. When both halves are
/// marked (two answers handled at once, each before the other was recorded) the capture is asked
/// for again, and its answer ships the order.
pub fn missing_halves(facts: &Facts) -> Vec<Command> {
    match (facts.committed, facts.captured) {
        (false, false) => vec![Command::Commit, Command::Capture],
        (false, true) => vec![Command::Commit],
        (true, false) => vec![Command::Capture],
        // Both answered, yet not shipped: ask again for the one whose answer ships it.
        (true, true) if facts.needs_payment => vec![Command::Capture],
        (true, true) => vec![Command::Commit],
    }
}

/// What `event` does to an order in `status` with these `facts`: the saga's whole table.
pub fn transition(status: OrderStatus, facts: &Facts, event: &SagaEvent) -> Transition {
    use OrderStatus as S;
    use SagaEvent as E;
    match (event, status) {
        // Nothing to pay: confirmed without a payment; only the stock is committed.
        (E::Reserved, S::Pending) if !facts.needs_payment => Transition::Move {
            from: vec![S::Pending],
            steps: vec![(S::Reserved, None), (S::Paid, Some(NOTHING_TO_PAY.into())), (S::Confirmed, None)],
            deadline: Deadline::Step(S::Confirmed),
            commands: vec![Command::Commit, Command::Tell(OrderEvent::CONFIRMED, S::Confirmed, None)],
        },
        (E::Reserved, S::Pending) => Transition::Move {
            from: vec![S::Pending],
            steps: vec![(S::Reserved, None)],
            deadline: Deadline::Step(S::Reserved),
            commands: vec![Command::Authorize],
        },
        (E::OutOfStock, S::Pending) => Transition::Move {
            from: vec![S::Pending],
            steps: vec![(S::Rejected, Some("out_of_stock".into()))],
            deadline: Deadline::Audit,
            commands: vec![Command::Tell(OrderEvent::REJECTED, S::Rejected, Some("out_of_stock".into()))],
        },
        (E::Authorized, S::Reserved) => Transition::Move {
            from: vec![S::Reserved],
            steps: vec![(S::Paid, None), (S::Confirmed, None)],
            deadline: Deadline::Step(S::Confirmed),
            commands: vec![Command::Commit, Command::Capture, Command::Tell(OrderEvent::CONFIRMED, S::Confirmed, None)],
        },
        (E::PaymentFailed(reason), S::Pending | S::Reserved) => compensate(
            &[S::Pending, S::Reserved],
            S::PaymentFailed,
            reason,
            vec![
                Command::Release("payment_failed".into()),
                Command::Tell(OrderEvent::PAYMENT_FAILED, S::PaymentFailed, Some(reason.clone())),
            ],
        ),
        // A confirmed order ships once its money is captured and its stock committed; the first
        // of the two answers is marked until the other comes.
        (E::Captured, S::Confirmed) if facts.committed => Transition::Ship,
        (E::Captured, S::Confirmed) if facts.captured => Transition::Ignore,
        (E::Captured, S::Confirmed) => mark(status, facts, PAYMENT_CAPTURED),
        // Money taken for an order that will not ship: give it back (a void of a captured payment
        // refunds it; asked again, it refunds once).
        (E::Captured, s) if will_not_ship(s) => send(s, vec![Command::Void("captured_after_cancel".into())]),
        (E::Committed, S::Confirmed) if facts.captured => Transition::Ship,
        (E::Committed, S::Confirmed) if facts.committed => Transition::Ignore,
        (E::Committed, S::Confirmed) => mark(status, facts, STOCK_COMMITTED),
        // Stock taken for an order that will not ship: it goes back (a release of committed units
        // returns them; asked again, it returns them once).
        (E::Committed, s) if will_not_ship(s) => send(s, vec![Command::Release("committed_after_cancel".into())]),
        // Compensations answered: marked, if awaited.
        (E::Released, _) if facts.unanswered.contains(&STOCK_RELEASED) => mark(status, facts, STOCK_RELEASED),
        (E::MoneyReleased, _) if facts.unanswered.contains(&MONEY_RELEASED) => mark(status, facts, MONEY_RELEASED),
        // The hold lapsed before the commit: the units may be sold; give the money back.
        (E::CommitFailed(_), S::Confirmed) => cancel(&[S::Confirmed], "reservation_lapsed"),
        // The money can never be taken: give the stock back.
        (E::CaptureFailed(_), S::Confirmed) => cancel(&[S::Confirmed], "payment_capture_failed"),
        // The audit of a settled order: its stock or its money is not where the rules want it.
        (E::CommitFailed(reason), _) => Transition::Audit(Refused::Commit, reason.clone()),
        (E::CaptureFailed(reason), _) => Transition::Audit(Refused::Capture, reason.clone()),
        // The shopper cancels an order that has not left; cancelled again, it stays so.
        (E::Cancel, s) if s.is_cancellable() => cancel(&[S::Pending, S::Reserved, S::Paid, S::Confirmed], "cancelled"),
        (E::Cancel, S::Cancelled) => Transition::Ignore,
        (E::Cancel, _) => Transition::Refuse,
        // Delivered keeps the deadline of the audit still due.
        (E::Deliver, S::Shipped) => Transition::Move {
            from: vec![S::Shipped],
            steps: vec![(S::Delivered, None)],
            deadline: Deadline::Keep,
            commands: vec![Command::Tell(OrderEvent::DELIVERED, S::Delivered, None)],
        },
        (E::Deliver, S::Delivered) => Transition::Ignore,
        (E::Deliver, _) => Transition::Refuse,
        // A step waited too long: an order still waiting for its stock or its payment is cancelled.
        (E::Overdue, S::Pending | S::Reserved | S::Paid) => cancel(&[status], "timed_out"),
        // A compensation not answered (its command dead-lettered, the service down): sent again
        // until it is, so no stock or money stays with an order that will not ship.
        (E::Overdue, S::Cancelled | S::PaymentFailed) if !facts.unanswered.is_empty() => Transition::Move {
            from: vec![status],
            steps: Vec::new(),
            deadline: Deadline::Compensation,
            commands: missing_compensations(status, facts),
        },
        // A confirmed order's commit or capture, whichever has not answered, asked again.
        (E::Overdue, S::Confirmed) => Transition::Move {
            from: vec![status],
            steps: Vec::new(),
            deadline: Deadline::Step(S::Confirmed),
            commands: missing_halves(facts),
        },
        // Settled, and its audit is due.
        (E::Overdue, _) => Transition::Reconcile,
        // Answers out of turn (repeated, or overtaken): nothing more to do.
        _ => Transition::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use OrderStatus as S;
    use SagaEvent as E;

    fn facts() -> Facts {
        Facts { needs_payment: true, ..Facts::default() }
    }

    /// The statuses an event moves an order to (its last step), or what else it does.
    fn outcome(status: OrderStatus, facts: &Facts, event: &SagaEvent) -> String {
        match transition(status, facts, event) {
            Transition::Move { steps, .. } if steps.is_empty() => "send".into(),
            Transition::Move { steps, .. } => {
                let (to, reason) = steps.last().expect("a step").clone();
                match reason {
                    Some(reason) if to == status => format!("mark {reason}"),
                    _ => to.as_str().to_owned(),
                }
            }
            Transition::Ship => "ship".into(),
            Transition::Audit(..) => "audit".into(),
            Transition::Reconcile => "reconcile".into(),
            Transition::Ignore => "-".into(),
            Transition::Refuse => "refuse".into(),
        }
    }

    /// Every status × every event of an order to pay, nothing answered yet: the allowed moves and
    /// the refused ones, as one table (rows are statuses in [`OrderStatus::ALL`] order; columns
    /// are events in [`SagaEvent::examples`] order).
    #[test]
    fn every_status_and_event_of_an_order_to_pay() {
        #[rustfmt::skip]
        let table: [(S, [&str; 13]); 10] = [
            //                 Reserved    OutOfStock  Authorized   PayFailed         Captured                   Committed                 Released  MoneyRel  CommitFailed  CaptureFailed Cancel       Deliver     Overdue
            (S::Pending,      ["reserved", "rejected", "-",         "payment_failed", "-",                       "-",                      "-",      "-",      "audit",      "audit",      "cancelled", "refuse",   "cancelled"]),
            (S::Reserved,     ["-",        "-",        "confirmed", "payment_failed", "-",                       "-",                      "-",      "-",      "audit",      "audit",      "cancelled", "refuse",   "cancelled"]),
            (S::Paid,         ["-",        "-",        "-",         "-",              "-",                       "-",                      "-",      "-",      "audit",      "audit",      "cancelled", "refuse",   "cancelled"]),
            (S::Confirmed,    ["-",        "-",        "-",         "-",              "mark payment_captured",   "mark stock_committed",   "-",      "-",      "cancelled",  "cancelled",  "cancelled", "refuse",   "send"]),
            (S::Shipped,      ["-",        "-",        "-",         "-",              "-",                       "-",                      "-",      "-",      "audit",      "audit",      "refuse",    "delivered", "reconcile"]),
            (S::Delivered,    ["-",        "-",        "-",         "-",              "-",                       "-",                      "-",      "-",      "audit",      "audit",      "refuse",    "-",        "reconcile"]),
            (S::Rejected,     ["-",        "-",        "-",         "-",              "send",                    "send",                   "-",      "-",      "audit",      "audit",      "refuse",    "refuse",   "reconcile"]),
            (S::PaymentFailed,["-",        "-",        "-",         "-",              "send",                    "send",                   "-",      "-",      "audit",      "audit",      "refuse",    "refuse",   "reconcile"]),
            (S::Cancelled,    ["-",        "-",        "-",         "-",              "send",                    "send",                   "-",      "-",      "audit",      "audit",      "-",         "refuse",   "reconcile"]),
            (S::Refunded,     ["-",        "-",        "-",         "-",              "-",                       "-",                      "-",      "-",      "audit",      "audit",      "refuse",    "refuse",   "reconcile"]),
        ];
        let events = SagaEvent::examples();
        for (row, (status, expected)) in table.iter().enumerate() {
            assert_eq!(*status, S::ALL[row], "rows follow OrderStatus::ALL");
            for (event, want) in events.iter().zip(expected) {
                assert_eq!(outcome(*status, &facts(), event), *want, "{status:?} × {event:?}");
            }
        }
    }

    #[test]
    fn an_order_with_nothing_to_pay_is_confirmed_by_its_reservation_and_commits_only() {
        let free = Facts { needs_payment: false, captured: true, ..Facts::default() };
        let Transition::Move { from, steps, deadline, commands } = transition(S::Pending, &free, &E::Reserved) else {
            panic!("a move")
        };
        assert_eq!(from, [S::Pending]);
        assert_eq!(steps, [(S::Reserved, None), (S::Paid, Some(NOTHING_TO_PAY.into())), (S::Confirmed, None)]);
        assert_eq!(deadline, Deadline::Step(S::Confirmed));
        assert_eq!(commands, [Command::Commit, Command::Tell(OrderEvent::CONFIRMED, S::Confirmed, None)]);
        // Its commit ships it: there is no capture to wait for.
        assert_eq!(transition(S::Confirmed, &free, &E::Committed), Transition::Ship);
        assert_eq!(missing_halves(&free), [Command::Commit]);
        // Both marked yet not shipped: the commit, whose answer ships it, is asked for again.
        let committed = Facts { committed: true, ..free };
        assert_eq!(missing_halves(&committed), [Command::Commit]);
    }

    #[test]
    fn a_confirmed_order_ships_on_the_second_half_and_ignores_a_repeated_first() {
        let captured = Facts { captured: true, ..facts() };
        let committed = Facts { committed: true, ..facts() };
        assert_eq!(transition(S::Confirmed, &captured, &E::Committed), Transition::Ship);
        assert_eq!(transition(S::Confirmed, &committed, &E::Captured), Transition::Ship);
        assert_eq!(transition(S::Confirmed, &captured, &E::Captured), Transition::Ignore);
        assert_eq!(transition(S::Confirmed, &committed, &E::Committed), Transition::Ignore);
        assert_eq!(missing_halves(&facts()), [Command::Commit, Command::Capture]);
        assert_eq!(missing_halves(&captured), [Command::Commit]);
        assert_eq!(missing_halves(&committed), [Command::Capture]);
        let both = Facts { captured: true, committed: true, ..facts() };
        assert_eq!(missing_halves(&both), [Command::Capture]);
    }

    #[test]
    fn compensations_are_marked_once_awaited_and_the_last_one_settles_the_order() {
        let owed = Facts { unanswered: vec![STOCK_RELEASED, MONEY_RELEASED], ..facts() };
        let Transition::Move { steps, deadline, commands, .. } = transition(S::Cancelled, &owed, &E::Released) else {
            panic!("a mark")
        };
        assert_eq!(steps, [(S::Cancelled, Some(STOCK_RELEASED.into()))]);
        assert_eq!(deadline, Deadline::Keep);
        assert!(commands.is_empty());
        let last = Facts { unanswered: vec![MONEY_RELEASED], ..facts() };
        let Transition::Move { deadline, .. } = transition(S::Cancelled, &last, &E::MoneyReleased) else {
            panic!("a mark")
        };
        assert_eq!(deadline, Deadline::Audit);
        // Answered already, or never asked for: nothing.
        assert_eq!(transition(S::Cancelled, &last, &E::Released), Transition::Ignore);
        assert_eq!(transition(S::Shipped, &facts(), &E::Released), Transition::Ignore);
        // Overdue, the missing ones are sent again with the reason first given.
        let timed_out = Facts { reason: Some("timed_out".into()), ..owed.clone() };
        assert_eq!(
            missing_compensations(S::Cancelled, &timed_out),
            [Command::Release("timed_out".into()), Command::Void("timed_out".into())]
        );
        let failed = Facts { unanswered: vec![STOCK_RELEASED], reason: Some("card_declined".into()), ..facts() };
        assert_eq!(missing_compensations(S::PaymentFailed, &failed), [Command::Release("payment_failed".into())]);
        assert_eq!(outcome(S::Cancelled, &owed, &E::Overdue), "send");
        assert_eq!(outcome(S::PaymentFailed, &failed, &E::Overdue), "send");
    }

    #[test]
    fn cancellations_say_why_and_give_everything_back() {
        for (status, event, reason) in [
            (S::Pending, E::Cancel, "cancelled"),
            (S::Confirmed, E::Cancel, "cancelled"),
            (S::Reserved, E::Overdue, "timed_out"),
            (S::Confirmed, E::CommitFailed("released".into()), "reservation_lapsed"),
            (S::Confirmed, E::CaptureFailed("voided".into()), "payment_capture_failed"),
        ] {
            let Transition::Move { steps, deadline, commands, .. } = transition(status, &facts(), &event) else {
                panic!("{status:?} × {event:?} cancels")
            };
            assert_eq!(steps, [(S::Cancelled, Some(reason.into()))]);
            assert_eq!(deadline, Deadline::Compensation);
            assert_eq!(commands, cancellation(reason));
        }
        let Transition::Move { from, .. } = transition(S::Paid, &facts(), &E::Cancel) else { panic!("a move") };
        assert_eq!(from, [S::Pending, S::Reserved, S::Paid, S::Confirmed]);
    }

    #[test]
    fn a_refused_payment_releases_the_stock_and_records_the_decline() {
        let event = E::PaymentFailed("insufficient_funds".into());
        let Transition::Move { from, steps, commands, .. } = transition(S::Reserved, &facts(), &event) else {
            panic!("a move")
        };
        assert_eq!(from, [S::Pending, S::Reserved]);
        assert_eq!(steps, [(S::PaymentFailed, Some("insufficient_funds".into()))]);
        assert_eq!(
            commands,
            [
                Command::Release("payment_failed".into()),
                Command::Tell(OrderEvent::PAYMENT_FAILED, S::PaymentFailed, Some("insufficient_funds".into())),
            ]
        );
    }
}
