//! `xds-agent bootstrap --node-id ID [--xds ADDR] [--admin-port P] [--delta]
//! [--tls-ca F [--tls-cert F --tls-key F] [--tls-server-name NAME]]`.

use std::process::ExitCode;

use super::bootstrap_tls::BootstrapTlsArgs;
use crate::bootstrap::{AdsProtocol, BootstrapOptions, render};

/// Arguments of `bootstrap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Envoy node id (shown at the agent's /debug/nodes).
    #[arg(long)]
    pub node_id: String,
    /// Envoy node cluster.
    #[arg(long, default_value = "envoy-affinity")]
    pub node_cluster: String,
    /// The agent's gRPC address as Envoy reaches it.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub xds: String,
    /// Envoy's admin port (on 127.0.0.1).
    #[arg(long, default_value_t = 9901)]
    pub admin_port: u16,
    /// Use incremental (delta) xDS instead of state of the world.
    #[arg(long)]
    pub delta: bool,
    /// TLS to the agent.
    #[command(flatten)]
    pub tls: BootstrapTlsArgs,
}

/// Run `bootstrap`.
#[must_use]
pub fn run(args: &Args) -> ExitCode {
    let options = BootstrapOptions {
        node_id: args.node_id.clone(),
        node_cluster: args.node_cluster.clone(),
        xds_address: args.xds.clone(),
        admin_port: args.admin_port,
        protocol: if args.delta {
            AdsProtocol::Delta
        } else {
            AdsProtocol::StateOfTheWorld
        },
        tls: args.tls.options(),
    };
    match render(&options) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("xds-agent bootstrap: {message}");
            ExitCode::from(2)
        }
    }
}
