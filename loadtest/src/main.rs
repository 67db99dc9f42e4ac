//! `loadtest`: runs a load profile against a shop and reports; exits 1 when a request failed or the
//! consistency check found a problem.

use std::time::Duration;

use clap::Parser;
use shop_loadtest::{AdminLogin, Options, Profile};

/// Runs shopper journeys against a shop, then checks that it accounts for all of them.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version)]
struct Args {
    /// The shop's base URL.
    #[arg(long, env = "LOADTEST_HOST", default_value = "http://127.0.0.1:8080")]
    host: String,
    /// smoke, normal or black-friday.
    #[arg(long, default_value = "normal")]
    profile: String,
    /// Simulated users at full load, instead of the profile's.
    #[arg(long)]
    users: Option<usize>,
    /// How long the full load holds, in seconds, instead of the profile's.
    #[arg(long)]
    hold_secs: Option<u64>,
    /// An admin's email (`shop admin create` makes one).
    #[arg(long, env = "LOADTEST_ADMIN_EMAIL")]
    admin_email: String,
    /// Its password.
    #[arg(long, env = "LOADTEST_ADMIN_PASSWORD")]
    admin_password: String,
    /// Its TOTP secret, or the `otpauth://` URI `shop admin create` printed.
    #[arg(long, env = "LOADTEST_ADMIN_TOTP")]
    admin_totp: String,
    /// How many products shoppers buy from.
    #[arg(long, default_value_t = 200)]
    hot_products: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    report_json: Option<std::path::PathBuf>,
    /// Let goose print its own progress and tables too.
    #[arg(long)]
    verbose: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::install_crypto_provider();
    let args = Args::parse();
    let Some(mut profile) = Profile::named(&args.profile) else {
        anyhow::bail!("no profile {:?}: one of {}", args.profile, Profile::NAMES.join(", "));
    };
    if let Some(users) = args.users {
        profile.users = users;
    }
    if let Some(hold) = args.hold_secs {
        profile.hold = Duration::from_secs(hold);
    }
    let admin = AdminLogin {
        email: args.admin_email,
        password: args.admin_password,
        totp_secret: AdminLogin::secret_of(&args.admin_totp),
    };
    let mut options = Options::new(args.host, profile, admin);
    options.hot_products = args.hot_products;
    options.verbose = args.verbose;
    let report = shop_loadtest::run(options).await?;
    print!("{}", report.render());
    if let Some(path) = args.report_json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
