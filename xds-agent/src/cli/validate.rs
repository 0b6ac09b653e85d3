//! `xds-agent validate FILE`: print every error, exit 64 when there is one.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file or directory of YAML files.
    pub config: PathBuf,
}

/// Run `validate`.
#[must_use]
pub fn run(args: &Args) -> ExitCode {
    match config::load(&args.config) {
        Ok(loaded) => {
            let c = &loaded.config;
            println!(
                "{}: valid ({} listeners, {} services)",
                args.config.display(),
                c.listeners.len(),
                c.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{error}");
            }
            eprintln!("{} error(s)", errors.0.len());
            ExitCode::from(super::EXIT_INVALID_CONFIG)
        }
    }
}
