//! `xds-agent`: consistent-hash xDS control plane for Envoy. See `xds-agent --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    xds_agent::cli::run(xds_agent::cli::Cli::parse())
}
