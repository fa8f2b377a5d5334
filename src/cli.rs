//! The `bazaar` command line.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{self, App, AppState};
use crate::config::{Config, Overrides};
use crate::identity::service;
use crate::platform::telemetry;

#[derive(Parser)]
#[command(name = "bazaar", version, about = "Bazaar e-commerce platform")]
struct Cli {
    /// TOML configuration file (default: ./bazaar.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded database and local files (default: ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run pending migrations (unless `database.auto_migrate = false`), then serve HTTP.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run job workers (and the scheduler) without serving HTTP.
    Worker {
        /// Comma-separated job types to serve (default: all).
        #[arg(long, value_delimiter = ',')]
        queues: Option<Vec<String>>,
        /// Jobs of one type run at once (default: `jobs.concurrency`).
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Apply or inspect database migrations.
    Migrate {
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
    },
    /// Create a superuser staff account; the password is read from standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (the only way: it never appears in `ps`).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Load a demo catalog (categories, a product type with colour and size SKUs, a few
    /// hundred products) into an empty shop, to try the storefront and back office.
    SeedDemo,
    /// Add listed products in bulk until the catalog holds `--skus` more SKUs (four per
    /// product, slugs `scale-<n>`), for scale tests and benchmarks.
    SeedScale {
        #[arg(long, default_value_t = 1_000_000)]
        skus: u64,
    },
    /// Flash sales: check one for consistency.
    FlashSale {
        #[command(subcommand)]
        action: FlashSaleAction,
    },
    /// Print the effective configuration with secrets masked.
    Config,
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum FlashSaleAction {
    /// Compare the gate, the purchase stream, the orders and the stock ledger of a sale;
    /// exits 1 listing the differences, if any.
    Verify {
        id: i64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MigrateAction {
    Up,
    Status,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("bazaar: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("bazaar: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bazaar: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(config).await,
        Command::Worker {
            queues,
            concurrency,
        } => work(config, queues, concurrency).await,
        Command::Migrate { action } => migrate(config, action).await,
        Command::CreateAdmin { email, .. } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let state = AppState(std::sync::Arc::new(App::open(config).await?));
            match service::create_superuser(&state, &email, password).await {
                Ok(staff) => {
                    println!("created superuser {} (id {})", staff.email, staff.id);
                    Ok(())
                }
                Err(err) => anyhow::bail!("{}", err.problem().detail),
            }
        }
        Command::SeedDemo => {
            let state = AppState(std::sync::Arc::new(App::open(config).await?));
            let report = crate::catalog::seed::seed_demo(&state).await?;
            println!(
                "loaded {} categories, {} products, {} SKUs and {} images",
                report.categories, report.products, report.skus, report.images
            );
            Ok(())
        }
        Command::SeedScale { skus } => {
            let state = AppState(std::sync::Arc::new(App::open(config).await?));
            let report = crate::catalog::seed::load_scale(&state, skus).await?;
            println!(
                "added {} products and {} SKUs in {:.1} s",
                report.products,
                report.skus,
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::FlashSale {
            action: FlashSaleAction::Verify { id, json },
        } => {
            let state = AppState(std::sync::Arc::new(App::open(config).await?));
            let report = crate::flash::verify::verify(&state, id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            anyhow::ensure!(
                report.consistent,
                "flash sale {id}: {} differences",
                report.differences.len()
            );
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", app::openapi_document().to_pretty_json()?);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bootstrap = config.auth.bootstrap_admin;
    let server = app::build(config).await?;
    if bootstrap {
        service::bootstrap_admin(&server.state).await?;
    }
    println!("bazaar listening on http://{}", server.addr);
    let stopper = server.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopper.send(true);
    });
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn work(
    mut config: Config,
    queues: Option<Vec<String>>,
    concurrency: Option<usize>,
) -> anyhow::Result<()> {
    config.jobs.run_workers = true;
    let options = crate::jobs::worker::WorkerOptions {
        queues,
        concurrency: concurrency.unwrap_or(config.jobs.concurrency),
    };
    let state = AppState(std::sync::Arc::new(App::open(config).await?));
    let background = app::Background::start(&state, &options)?;
    println!("bazaar worker running");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing running jobs");
    background.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

async fn migrate(mut config: Config, action: MigrateAction) -> anyhow::Result<()> {
    config.database.auto_migrate = false;
    let db = crate::platform::db::Db::connect(&config).await?;
    match action {
        MigrateAction::Up => {
            let pending = db.pending_migrations().await?;
            db.migrate().await?;
            println!("applied {} migration(s)", pending.len());
        }
        MigrateAction::Status => {
            let pending = db.pending_migrations().await?;
            if pending.is_empty() {
                println!("up to date");
            } else {
                for name in pending {
                    println!("pending {name}");
                }
            }
        }
    }
    Ok(())
}
