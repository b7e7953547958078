//! The `switchyard` command: wiring only; everything it runs lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use switchyard::config::Config;
use switchyard::ledger::{report, LedgerStore, ReportFormat, SpendGroupBy, SpendReport};

#[derive(Parser)]
#[command(name = "switchyard", version, about = "An AI gateway: one API in, every model provider out.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the built-in quickstart configuration unless --config is given).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the configuration's server.listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
    },
    /// Validate a configuration file and list every problem found.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Reports from the ledger.
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Spend by route, target or client key.
    Spend {
        #[arg(long, value_enum, default_value = "route")]
        by: By,
        /// How far back: a duration such as 7d, 24h, 30m, or an RFC 3339 time.
        #[arg(long, default_value = "7d")]
        since: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Ledger URL; defaults to the configuration's (or the quickstart's) ledger.
        #[arg(long)]
        ledger: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Route,
    Target,
    Key,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

/// See Cargo.toml for why jemalloc.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match switchyard::app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen, json_logs } => serve(config, listen, json_logs).await,
            Command::Check { config } => check(&config),
            Command::Report { report: ReportCommand::Spend { by, since, format, ledger, config } } => {
                spend(by, &since, format, ledger, config).await
            }
        }
    })
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(path) => Config::load(path).map_err(|e| format!("{}:\n{e}", path.display())),
        None => Config::quickstart().map_err(|e| format!("built-in quickstart configuration:\n{e}")),
    }
}

async fn serve(config_path: Option<PathBuf>, listen: Option<std::net::SocketAddr>, json_logs: bool) -> ExitCode {
    switchyard::telemetry::init_logging(json_logs);
    let mut config = match load(config_path.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.routes.values().flat_map(|r| &r.targets).any(|t| config.providers.get(&t.provider).is_some_and(|p| p.kind() == "sim")) {
        tracing::info!("some routes use the built-in simulator (`sim`): their answers are generated, not from a model");
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let threads = switchyard::app::serving_threads(&config.server);
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.server.listen);
            return ExitCode::FAILURE;
        }
    };
    let running = match switchyard::app::start_serving(config, listener, threads, config_path).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            println!(
                "{}: ok ({} providers, {} routes)",
                path.display(),
                config.providers.len(),
                config.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: {} problem(s)", path.display(), errors.0.len());
            for error in &errors.0 {
                eprintln!("  {error}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn spend(by: By, since: &str, format: Format, ledger: Option<String>, config: Option<PathBuf>) -> ExitCode {
    let url = match ledger {
        Some(url) => url,
        None => match load(config.as_ref()) {
            Ok(c) => c.ledger.url,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let since = match report::parse_since(since) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --since: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match LedgerStore::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the ledger: {e}");
            return ExitCode::FAILURE;
        }
    };
    let group_by = match by {
        By::Route => SpendGroupBy::Route,
        By::Target => SpendGroupBy::Target,
        By::Key => SpendGroupBy::Key,
    };
    let format = match format {
        Format::Table => ReportFormat::Table,
        Format::Json => ReportFormat::Json,
        Format::Csv => ReportFormat::Csv,
    };
    match SpendReport::build(&store, group_by, since).await {
        Ok(report) => {
            print!("{}", report.render(format));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
