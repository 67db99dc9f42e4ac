//! `shop reconcile`: every order of the shop checked against its payment and its stock
//! reservation, with the rules the order service's audit and the load test's consistency check
//! share ([`platform::contracts::reconcile`]). An operator's tool: it reads the three services'
//! stores at once (the configured ones: the embedded files, or DynamoDB and PostgreSQL), which no
//! service does. With `--repair` it sends, on the event bus, the saga command that sets each
//! repairable finding right (the running services carry it out, now or when they start), and gives
//! an order the saga works on but left without a deadline one, so the sweeper moves it.

use std::collections::BTreeMap;

use platform::contracts::reconcile::{Finding, judge};
use platform::infra::Infra;
use shop_order::domain::order::{Order, OrderStatus};
use shop_order::store::{Advance, OrderStore};

/// Orders read per page.
const PAGE: usize = 200;

/// How far past its deadline an order the saga works on is reported as overdue (the sweeper,
/// running, moves it within seconds).
const OVERDUE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// One order that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    /// The order.
    pub order_id: String,
    /// Its status.
    pub status: String,
    /// The rule broken.
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
    /// The command sent to set it right (`--repair`), or that would set it right.
    pub repair: Option<&'static str>,
    /// Whether it was sent.
    pub repaired: bool,
}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Orders read, by status.
    pub orders: BTreeMap<String, usize>,
    /// Every finding.
    pub findings: Vec<Line>,
}

impl Report {
    /// Findings no command sets right: people must look at these.
    pub fn unrepairable(&self) -> usize {
        self.findings.iter().filter(|f| f.repair.is_none()).count()
    }

    /// Findings a command sets right that were not (a run without `--repair`).
    pub fn unrepaired(&self) -> usize {
        self.findings.iter().filter(|f| f.repair.is_some() && !f.repaired).count()
    }

    /// Findings by rule.
    pub fn by_rule(&self) -> BTreeMap<&'static str, usize> {
        let mut rules = BTreeMap::new();
        for finding in &self.findings {
            *rules.entry(finding.rule).or_default() += 1;
        }
        rules
    }
}

/// Checks every order in the stores `infra` names; with `repair`, sends the commands that set the
/// repairable findings right.
pub async fn run(infra: &Infra, repair: bool) -> anyhow::Result<Report> {
    let orders = shop_order::open(infra).await?.orders;
    // No relay runs here: events a repair writes wait in the outbox for the service's relay.
    let (payments, _, _) = shop_payment::open_store(infra, Default::default()).await?;
    let inventory = shop_inventory::open(infra).await?.store;
    let mut report = Report::default();
    for status in OrderStatus::ALL {
        let mut after: Option<String> = None;
        loop {
            let page = orders.by_status(status, after.as_deref(), PAGE).await?;
            for order in &page {
                *report.orders.entry(status.as_str().to_owned()).or_default() += 1;
                let findings = if shop_order::app::reconcile::WAITING.contains(&status) {
                    waiting(orders.as_ref(), order, repair).await?
                } else {
                    let payment = payments.by_order(&order.id).await?;
                    let payment: Vec<&str> = payment.iter().map(|p| p.status.as_str()).collect();
                    let reservation = inventory.reservation(&order.id).await?;
                    let reservation = reservation.as_ref().map(|r| r.status.as_str());
                    let mut lines = Vec::new();
                    for finding in judge(status.as_str(), order.total.amount, &payment, reservation) {
                        lines.push(settled(infra, order, finding, repair).await?);
                    }
                    lines
                };
                report.findings.extend(findings);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
    }
    Ok(report)
}

/// A finding about a settled order, its command sent with `repair`.
async fn settled(infra: &Infra, order: &Order, finding: Finding, repair: bool) -> anyhow::Result<Line> {
    let mut repaired = false;
    if let (Some(command), true) = (finding.repair, repair) {
        infra.bus.publish(&shop_order::app::reconcile::command(order, command)).await?;
        repaired = true;
    }
    Ok(Line {
        order_id: order.id.clone(),
        status: order.status.as_str().to_owned(),
        rule: finding.rule,
        detail: finding.detail,
        repair: finding.repair.map(|r| r.as_str()),
        repaired,
    })
}

/// An order the saga works on: it must have a deadline, not long past.
async fn waiting(orders: &dyn OrderStore, order: &Order, repair: bool) -> anyhow::Result<Vec<Line>> {
    let line = |rule: &'static str, detail: String, fix: Option<&'static str>, repaired: bool| Line {
        order_id: order.id.clone(),
        status: order.status.as_str().to_owned(),
        rule,
        detail,
        repair: fix,
        repaired,
    };
    match order.deadline {
        None => {
            let mut repaired = false;
            if repair {
                let advance = Advance { deadline: Some(chrono::Utc::now()), ..Advance::default() };
                repaired = orders.advance(&order.id, &[order.status], &advance, &[]).await?.is_some();
            }
            let detail = "the saga works on it, yet nothing will move it".to_owned();
            Ok(vec![line("no_deadline", detail, Some("deadline"), repaired)])
        }
        Some(deadline) if deadline < chrono::Utc::now() - OVERDUE => {
            let detail = format!("its deadline passed at {deadline}: is the order service's sweeper running?");
            Ok(vec![line("overdue", detail, None, false)])
        }
        Some(_) => Ok(Vec::new()),
    }
}

/// The report as text: a line per finding, then the counts.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let action = match (f.repair, f.repaired) {
            (Some(command), true) => format!("sent {command}"),
            (Some(command), false) => format!("{command} would set it right (--repair)"),
            (None, _) => "for people to look at".to_owned(),
        };
        out.push_str(&format!("{} {}: {} ({}); {action}\n", f.order_id, f.status, f.rule, f.detail));
    }
    let total: usize = report.orders.values().sum();
    let statuses: Vec<String> = report.orders.iter().map(|(s, n)| format!("{s} {n}")).collect();
    out.push_str(&format!("checked {total} order(s): {}\n", statuses.join(", ")));
    if report.findings.is_empty() {
        out.push_str("every order agrees with its payment and its stock\n");
    } else {
        let rules: Vec<String> = report.by_rule().iter().map(|(r, n)| format!("{r} {n}")).collect();
        out.push_str(&format!(
            "{} finding(s): {}; {} for people to look at\n",
            report.findings.len(),
            rules.join(", "),
            report.unrepairable()
        ));
    }
    out
}

/// Whether `report` leaves the shop consistent after the commands it sent are carried out.
pub fn settles(report: &Report) -> bool {
    report.unrepairable() == 0 && report.unrepaired() == 0
}
