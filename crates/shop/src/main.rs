//! `shop`: the whole platform in one process (`shop up`, what `cargo run --release` runs), and the
//! operator's commands (`migrate`, `seed`, `reconcile`, `events`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use platform::Config;
use platform::infra::Infra;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "shop", version, about = "The shop platform: five services, one command.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Runs all five services in one process on one port (the default command).
    Up(UpArgs),
    /// Applies every service's migrations to the stores under the data dir, then exits.
    Migrate(DataArgs),
    /// Makes the DynamoDB tables, SQS queues and S3 bucket on an AWS emulator (the local stack's
    /// one-shot init), then exits.
    Provision(DataArgs),
    /// Seeds the demo catalog into an empty store (with --products N, N generated products with
    /// stock; with --pricing, the demo shipping zones, tax rates and promotions), then exits.
    Seed(SeedArgs),
    /// Imports products from an NDJSON file (one product a line, as the admin API takes them).
    Import(ImportArgs),
    /// Rebuilds the product search index from the catalog (stop `shop up` first in the embedded mode).
    Reindex(DataArgs),
    /// Administers accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Checks every order against its payment and its stock reservation (the rules of the order
    /// service's audit); with --repair, sends the saga commands that set what it can right. Exits
    /// 1 when something is left for people to look at (or to repair).
    Reconcile(ReconcileArgs),
    /// Checks the settings (the environment and the `SHOP_CONFIG` file) as the process running one
    /// service (`--service order`: its own binary) or all five (the `shop` binary) reads them at
    /// start; exits 2 naming a refused variable.
    CheckConfig(CheckArgs),
    /// Inspects and redrives dead-lettered events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates an admin account and prints the otpauth:// URI of its second factor (PostgreSQL when
    /// SHOP_DATABASE_URL is set, else the data dir).
    Create {
        /// The admin's email.
        #[arg(long)]
        email: String,
        /// The admin's password (at least 10 characters).
        #[arg(long, env = "SHOP_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// The admin's display name.
        #[arg(long, default_value = "Admin")]
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Lists the dead letters of a consumer queue, one JSON object a line.
    DeadLetters {
        /// The consumer queue.
        #[arg(long)]
        queue: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Lists the events a service's outbox relay parked because the bus refused them for good (too
    /// large, characters a queue does not carry), one JSON object a line, with the reason.
    Parked {
        /// Only this service's (user, product, order, payment, inventory); default all.
        #[arg(long)]
        service: Option<String>,
        /// At most this many per service.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Moves every dead letter of a queue back onto it.
    Redrive {
        /// The consumer queue.
        #[arg(long)]
        queue: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Args, Clone, Default)]
struct DataArgs {
    /// Where the embedded stores live (overrides SHOP_DATA_DIR; default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct SeedArgs {
    /// Also generate this many products (deterministic: the same N gives the same catalog).
    #[arg(long, default_value_t = 0)]
    products: u64,
    /// Write the generated products to this NDJSON file (for `shop import`) instead of the catalog.
    #[arg(long)]
    ndjson: Option<PathBuf>,
    /// Also seed the demo pricing (shipping zones with their tax rates, two promotions) into an
    /// order service that has none, as `shop up`'s first start does. Off by default: zones and an
    /// automatic promotion change what every checkout is charged.
    #[arg(long)]
    pricing: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Clone, Default)]
struct ReconcileArgs {
    /// Send the commands that set the repairable findings right (the running services carry them
    /// out).
    #[arg(long)]
    repair: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Clone, Default)]
struct CheckArgs {
    /// The service whose binary's settings to check (user, product, order, payment, inventory).
    #[arg(long)]
    service: Option<String>,
}

#[derive(Args, Clone, Default)]
struct ImportArgs {
    /// The NDJSON file.
    file: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Clone, Default)]
struct UpArgs {
    /// Port to listen on (overrides SHOP_PORT; default 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Don't seed the demo catalog (categories and 1,000 generated products) into an empty store.
    #[arg(long)]
    no_seed: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// The settings a process running one service declares (all five for `shop`).
fn check_config(args: &CheckArgs) -> ExitCode {
    let sections: Vec<_> = match &args.service {
        None => shop::SETTINGS.to_vec(),
        Some(name) => match shop::SETTINGS.iter().find(|section| section.service == name) {
            Some(section) => vec![*section],
            None => {
                eprintln!("shop: no service {name:?} (user, product, order, payment, inventory)");
                return ExitCode::from(2);
            }
        },
    };
    let config = Config::load(&sections).map_err(anyhow::Error::from).and_then(|config| match args.service {
        None => shop::check_together(&config).map(|()| config),
        Some(_) => Ok(config),
    });
    match config {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error}");
            ExitCode::from(2)
        }
    }
}

fn load_config(data: &DataArgs, port: Option<u16>) -> Result<Config, ExitCode> {
    let mut config = Config::load(&shop::SETTINGS).map_err(|error| {
        eprintln!("shop: {error}");
        ExitCode::from(2)
    })?;
    if let Some(dir) = &data.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(port) = port {
        config.port = port;
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    platform::install_crypto_provider();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Up(cli.up));
    let config = match &command {
        Command::CheckConfig(args) => return check_config(args),
        Command::Up(args) => load_config(&args.data, args.port),
        Command::Migrate(data) | Command::Reindex(data) | Command::Provision(data) => load_config(data, None),
        Command::Seed(args) => load_config(&args.data, None),
        Command::Import(args) => load_config(&args.data, None),
        Command::Reconcile(args) => load_config(&args.data, None),
        Command::Events {
            command:
                EventsCommand::DeadLetters { data, .. }
                | EventsCommand::Redrive { data, .. }
                | EventsCommand::Parked { data, .. },
        } => load_config(data, None),
        Command::Admin { command: AdminCommand::Create { data, .. } } => load_config(data, None),
    };
    let config = match config {
        Ok(config) => config,
        Err(code) => return code,
    };
    platform::telemetry::init(config.log_format, &config.log);
    let result = match command {
        Command::Up(args) => up(config, !args.no_seed).await,
        Command::Migrate(_) => shop::migrate(&config).await,
        Command::Provision(_) => shop::provision(&config).await,
        Command::Seed(SeedArgs { products, ndjson: Some(file), .. }) => write_ndjson(products, &file),
        Command::Seed(args) => seed(config, args.products, args.pricing).await,
        Command::Import(args) => import(config, &args.file).await,
        Command::Reindex(_) => reindex(config).await,
        Command::Reconcile(args) => match reconcile(config, &args).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(error) => Err(error),
        },
        Command::Events { command } => events(config, command).await,
        Command::CheckConfig(_) => unreachable!("checked before"),
        Command::Admin { command } => admin(config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = if total > 0 { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::new_spinner() };
    let template =
        format!("{{spinner}} {what} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

async fn seed(config: Config, products: u64, pricing: bool) -> anyhow::Result<()> {
    let infra = Infra::build(config, shop::routing()).await?;
    let seeder = shop::Seeder::open(&infra).await?;
    let added = seeder.demo().await?;
    println!("demo catalog: {added} categories added");
    if pricing {
        let settings = seeder.pricing().await?;
        println!("demo pricing: {settings} shipping zones and promotions added");
    }
    if products > 0 {
        let started = std::time::Instant::now();
        let bar = progress_bar(products, "seeding");
        let report = seeder.products(products, |done| bar.set_position(done)).await?;
        bar.finish_and_clear();
        println!(
            "seeded {} products in {:.1} s ({} failed); `shop up` indexes them",
            report.imported,
            started.elapsed().as_secs_f64(),
            report.failed_total
        );
    }
    Ok(())
}

fn write_ndjson(products: u64, file: &std::path::Path) -> anyhow::Result<()> {
    let out = std::fs::File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    let mut out = std::io::BufWriter::new(out);
    shop_product::app::seed::write_ndjson(products, &mut out)?;
    std::io::Write::flush(&mut out)?;
    println!("wrote {products} products to {}", file.display());
    Ok(())
}

async fn import(config: Config, file: &std::path::Path) -> anyhow::Result<()> {
    let infra = Infra::build(config, shop::routing()).await?;
    let catalog = shop_product::open_catalog(&infra).await?;
    let size = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?.len();
    let reader = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
    let bar = progress_bar(0, "importing");
    bar.set_message(format!("{size} bytes"));
    let started = std::time::Instant::now();
    let report = shop_product::app::import::import_ndjson(&catalog, tokio::io::BufReader::new(reader), |done| {
        bar.set_position(done)
    })
    .await?;
    bar.finish_and_clear();
    for failure in &report.failed {
        eprintln!("line {}: {}", failure.line, failure.error);
    }
    println!(
        "imported {} products in {:.1} s; {} line(s) failed",
        report.imported,
        started.elapsed().as_secs_f64(),
        report.failed_total
    );
    if report.failed_total > 0 {
        anyhow::bail!("{} line(s) were not imported", report.failed_total);
    }
    Ok(())
}

async fn reindex(config: Config) -> anyhow::Result<()> {
    let infra = Infra::build(config, shop::routing()).await?;
    let catalog = shop_product::open_catalog(&infra).await?;
    let index = shop_product::search_index(&infra)?;
    let total = catalog.products.count().await?;
    let bar = progress_bar(total, "indexing");
    let started = std::time::Instant::now();
    let indexed = shop_product::app::indexer::reindex(
        catalog.products.as_ref(),
        catalog.categories.as_ref(),
        index.as_ref(),
        shop_product::app::indexer::SWEEP_MARGIN,
        |done| bar.set_position(done),
    )
    .await?;
    bar.finish_and_clear();
    println!("indexed {indexed} products in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs `shop reconcile`; whether the shop is consistent (or will be, once the commands sent are
/// carried out).
async fn reconcile(config: Config, args: &ReconcileArgs) -> anyhow::Result<bool> {
    let infra = Infra::build(config, shop::routing()).await?;
    let report = shop::reconcile::run(&infra, args.repair).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", shop::reconcile::render(&report));
    }
    Ok(shop::reconcile::settles(&report))
}

async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { email, password, name, .. } => {
            let (users, _) = shop_user::user_store(&config).await?;
            let (user, uri) = shop_user::app::admin::create_admin(users.as_ref(), &email, &password, &name).await?;
            println!("admin {} created ({})", user.email, user.id);
            println!("add this to an authenticator app, then sign in with email, password and the current code:");
            println!("{uri}");
        }
    }
    Ok(())
}

async fn events(config: Config, command: EventsCommand) -> anyhow::Result<()> {
    let infra = Infra::build(config, shop::routing()).await?;
    match command {
        EventsCommand::DeadLetters { queue, limit, .. } => {
            for letter in infra.bus.dead_letters(&queue, limit).await? {
                let line = serde_json::json!({
                    "message_id": letter.message_id,
                    "queue": letter.queue,
                    "receive_count": letter.receive_count,
                    "reason": letter.reason,
                    "body": serde_json::from_str::<serde_json::Value>(&letter.body).unwrap_or(letter.body.into()),
                });
                println!("{line}");
            }
        }
        EventsCommand::Redrive { queue, .. } => {
            let moved = infra.bus.redrive(&queue).await?;
            println!("{moved} message(s) moved back onto {queue}");
        }
        EventsCommand::Parked { service, limit, .. } => {
            for (name, outbox) in shop::outboxes(&infra, service.as_deref()).await? {
                for parked in outbox.parked(limit).await? {
                    let line = serde_json::json!({
                        "service": name,
                        "seq": parked.seq,
                        "event_id": parked.event_id,
                        "reason": parked.reason,
                        "parked_at": chrono::DateTime::from_timestamp_millis(parked.parked_at_ms),
                        "body": serde_json::from_str::<serde_json::Value>(&parked.body).unwrap_or(parked.body.into()),
                    });
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

/// Products `shop up` generates on a first start.
const DEMO_PRODUCTS: u64 = 1_000;

async fn up(config: Config, seed_demo: bool) -> anyhow::Result<()> {
    let address = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    let data_dir = config.data_dir.clone();
    let public_url = config.public_url.clone();
    let infra = Infra::build(config, shop::routing()).await?;
    platform::http::serve::cancel_on_signal(infra.shutdown.clone());
    let services = shop::services(&infra).await?;
    if seed_demo {
        let seeder = shop::Seeder::open(&infra).await?;
        let added = seeder.demo().await?;
        let settings = seeder.pricing().await?;
        if settings > 0 {
            tracing::info!(settings, "seeded the demo shipping zones, tax rates and promotions");
        }
        if added > 0 {
            // A first start: a browsable demo catalog of generated products with stock.
            let report = seeder.products(DEMO_PRODUCTS, |_| {}).await?;
            tracing::info!(categories = added, products = report.imported, "seeded the demo catalog");
        }
    }
    let local = listener.local_addr()?;
    let url = public_url.map(|u| u.to_string()).unwrap_or_else(|| format!("http://localhost:{}", local.port()));
    println!("shop is up: {url} (listening on {local}, data in {}; Ctrl-C stops)", data_dir.display());
    infra.serve(listener, services).await?;
    println!("shop stopped");
    Ok(())
}
