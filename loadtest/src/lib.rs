//! The load test: simulated shoppers and admins (goose) against a running shop, then a check that
//! the platform accounts for everything they did.
//!
//! ```text
//! loadtest --host http://127.0.0.1:8080 --profile black-friday --admin-email … --admin-password … --admin-totp …
//! ```
//!
//! [`run`] prepares the shop (reads its catalog, sets the stock of the products shoppers buy), runs
//! the profile's journeys, waits for every order to settle, checks consistency and reports.

pub mod consistency;
pub mod journeys;
pub mod profile;
pub mod report;
pub mod shop;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use goose::config::GooseConfiguration;
use goose::prelude::*;

pub use profile::Profile;
pub use report::Report;
pub use shop::AdminLogin;

/// What to run against.
#[derive(Debug, Clone)]
pub struct Options {
    /// The shop's base URL.
    pub host: String,
    /// The load.
    pub profile: Profile,
    /// The admin who prepares the stock, restocks during the run and reads everything after.
    pub admin: AdminLogin,
    /// How many products shoppers buy from.
    pub hot_products: usize,
    /// How long orders may take to settle after the journeys stop.
    pub settle: Duration,
    /// Whether goose prints its own progress and tables too.
    pub verbose: bool,
}

impl Options {
    /// Options with the defaults: 200 products bought, a minute to settle, goose quiet.
    pub fn new(host: impl Into<String>, profile: Profile, admin: AdminLogin) -> Self {
        Self { host: host.into(), profile, admin, hot_products: 200, settle: Duration::from_secs(60), verbose: false }
    }
}

/// Runs the load test; the report (check [`Report::passed`]).
pub async fn run(options: Options) -> anyhow::Result<Report> {
    Ok(run_keeping(options).await?.0)
}

/// [`run`], also giving what the run shared (the catalog it prepared, what the journeys did), to
/// check the platform again later with [`consistency::check`].
pub async fn run_keeping(options: Options) -> anyhow::Result<(Report, Arc<journeys::Shared>)> {
    let host = options.host.trim_end_matches('/').to_owned();
    let admin = shop::Admin::sign_in(&host, &options.admin).await.context("the admin cannot sign in")?;
    let catalog = shop::Catalog::prepare(&host, &admin, options.hot_products).await.context("preparing the shop")?;
    let shared = Arc::new(journeys::Shared {
        catalog,
        admin,
        think: options.profile.think,
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        tally: journeys::Tally::default(),
    });

    let mut attack = *GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .set_default(GooseDefault::Host, host.as_str())?
        .set_default(GooseDefault::TestPlan, options.profile.test_plan().as_str())?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::Timeout, "30")?
        .set_default(GooseDefault::NoPrintMetrics, !options.verbose)?
        .set_default(GooseDefault::Quiet, usize::from(!options.verbose))?;
    // Round robin: users are spread over the journeys by weight, and each journey's steps run in
    // the order they were registered.
    attack = attack.set_scheduler(GooseScheduler::RoundRobin);
    for scenario in journeys::scenarios(&shared)? {
        attack = attack.register_scenario(scenario);
    }
    let metrics = attack.execute().await.map_err(|e| anyhow::anyhow!("the load test: {e:?}"))?;

    let findings = consistency::check(&shared, options.settle).await;
    let slow = shared.tally.unsettled_in_journey.load(std::sync::atomic::Ordering::Relaxed);
    Ok((Report::new(options.profile.name, &metrics, findings, slow), shared))
}
