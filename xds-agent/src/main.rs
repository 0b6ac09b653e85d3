//! `xds-agent`: consistent-hash xDS control plane for Envoy. See `xds-agent --help`.

mod malloc_arenas;

use std::process::ExitCode;

use clap::Parser;
use xds_agent::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything runs: on success this process is replaced and nothing here happens twice.
    let startup_warning = match cli.command {
        Command::Serve(_) => malloc_arenas::limit().err(),
        _ => None,
    };
    xds_agent::cli::run(cli, startup_warning)
}
