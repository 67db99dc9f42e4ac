//! `shop`: the whole platform in one process (`shop up`, what `cargo run --release` runs), and the
//! operator's commands (`migrate`, `seed`, `events`).

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
    /// Seeds the demo catalog into an empty store, then exits.
    Seed(DataArgs),
    /// Administers accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
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
struct UpArgs {
    /// Port to listen on (overrides SHOP_PORT; default 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Don't seed the demo catalog into an empty store.
    #[arg(long)]
    no_seed: bool,
    #[command(flatten)]
    data: DataArgs,
}

fn load_config(data: &DataArgs, port: Option<u16>) -> Result<Config, ExitCode> {
    let mut config = Config::load().map_err(|error| {
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
        Command::Up(args) => load_config(&args.data, args.port),
        Command::Migrate(data) | Command::Seed(data) => load_config(data, None),
        Command::Events { command: EventsCommand::DeadLetters { data, .. } | EventsCommand::Redrive { data, .. } } => {
            load_config(data, None)
        }
        Command::Admin { command: AdminCommand::Create { data, .. } } => load_config(data, None),
    };
    let config = match config {
        Ok(config) => config,
        Err(code) => return code,
    };
    platform::telemetry::init(config.log_format, &config.log);
    let result = match command {
        Command::Up(args) => up(config, !args.no_seed).await,
        Command::Migrate(_) => shop::migrate(&config),
        Command::Seed(_) => seed(config).await,
        Command::Events { command } => events(config, command).await,
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

async fn seed(config: Config) -> anyhow::Result<()> {
    let infra = Infra::build(config).await?;
    let added = shop::seed_demo(&infra).await?;
    println!("demo catalog: {added} categories added");
    Ok(())
}

async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { email, password, name, .. } => {
            let (users, _) = shop_user::user_store(&config).await?;
            let (user, uri) = shop_user::admin::create_admin(users.as_ref(), &email, &password, &name).await?;
            println!("admin {} created ({})", user.email, user.id);
            println!("add this to an authenticator app, then sign in with email, password and the current code:");
            println!("{uri}");
        }
    }
    Ok(())
}

async fn events(config: Config, command: EventsCommand) -> anyhow::Result<()> {
    let infra = Infra::build(config).await?;
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
    }
    Ok(())
}

async fn up(config: Config, seed_demo: bool) -> anyhow::Result<()> {
    let address = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    let data_dir = config.data_dir.clone();
    let public_url = config.public_url.clone();
    let infra = Infra::build(config).await?;
    platform::http::serve::cancel_on_signal(infra.shutdown.clone());
    let services = shop::services(&infra).await?;
    if seed_demo {
        let added = shop::seed_demo(&infra).await?;
        if added > 0 {
            tracing::info!(categories = added, "seeded the demo catalog");
        }
    }
    let local = listener.local_addr()?;
    let url = public_url.map(|u| u.to_string()).unwrap_or_else(|| format!("http://localhost:{}", local.port()));
    println!("shop is up: {url} (listening on {local}, data in {}; Ctrl-C stops)", data_dir.display());
    infra.serve(listener, services).await?;
    println!("shop stopped");
    Ok(())
}
