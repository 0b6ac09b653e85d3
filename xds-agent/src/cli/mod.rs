//! The command line: one file per subcommand. To add one, add a variant to [`Command`], a module
//! with an `Args` struct and a `run` function, and a match arm in [`run`].

pub mod bootstrap;
pub mod bootstrap_tls;
pub mod explain;
mod prediction;
pub mod serve;
pub mod serve_tls;
pub mod simulate;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for an invalid configuration (`serve` at start, `validate`).
pub const EXIT_INVALID_CONFIG: u8 = 64;

/// Consistent-hash xDS control plane for Envoy.
#[derive(Debug, Parser)]
#[command(name = "xds-agent", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve ADS (gRPC) and the admin HTTP API from a configuration file or directory.
    Serve(serve::Args),
    /// Check a configuration; print every error with file:line:column and field path.
    Validate(validate::Args),
    /// Print an Envoy bootstrap YAML that gets everything from the agent.
    Bootstrap(bootstrap::Args),
    /// Print the backend Envoy picks for a request carrying an affinity key.
    Explain(explain::Args),
    /// Spread N keys over a service's backends; show balance and the keys a change moves.
    Simulate(simulate::Args),
}

/// Run the parsed command line; `startup_warning` (from before the logger existed) is logged first.
#[must_use]
pub fn run(cli: Cli, startup_warning: Option<String>) -> ExitCode {
    init_tracing(cli.log_format);
    if let Some(warning) = startup_warning {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Bootstrap(args) => bootstrap::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
