//! `xds-agent serve --config F [--grpc ADDR] [--admin ADDR] [--debug-admin ADDR]
//! [--tls-cert F --tls-key F [--client-ca F]] [--kubeconfig F]`: load, serve, watch, stop on
//! SIGTERM / Ctrl-C. With a `kubernetes:` section, the agent also watches the API server and
//! serves nothing until every watch has synced once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::serve_tls::TlsArgs;
use crate::config;
use crate::kubernetes::{self, ClusterStatus};
use crate::model::{AgentConfig, KubernetesSource};
use crate::reload::{ClusterInput, watch_config};
use crate::server::tls::ReloadingServerConfig;
use crate::server::{admin, grpc};
use crate::state::{AgentState, Published, publish};
use crate::translate::TranslateOptions;

/// How long shutdown waits for the servers to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file or directory of YAML files (watched for changes).
    #[arg(long)]
    pub config: PathBuf,
    /// ADS gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub grpc: SocketAddr,
    /// Admin HTTP listen address: /healthz, /readyz, /metrics and the remote `.wasm`.
    #[arg(long, default_value = "127.0.0.1:19000")]
    pub admin: SocketAddr,
    /// kubeconfig of the API server for the `kubernetes:` source (default: the pod's service
    /// account in a cluster, else KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Debug HTTP listen address: /debug/snapshot and /debug/nodes (the whole configuration and
    /// every node; keep it off the network, e.g. 127.0.0.1:19001). Not served without it.
    #[arg(long)]
    pub debug_admin: Option<SocketAddr>,
    /// TLS on the ADS port.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Run `serve`.
#[must_use]
pub fn run(args: &Args) -> ExitCode {
    let loaded = match config::load(&args.config) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!("{error}");
            }
            tracing::error!(
                errors = errors.0.len(),
                "invalid configuration; not starting"
            );
            return ExitCode::from(super::EXIT_INVALID_CONFIG);
        }
    };
    let options = TranslateOptions {
        agent_admin_address: args.admin,
    };
    // With a Kubernetes source nothing is published before the first complete view.
    let start = match loaded.config.kubernetes.clone() {
        Some(source) => Start::Cluster(source),
        None => match publish(&loaded, &options) {
            Ok(published) => Start::Files(published, Box::new(loaded.config)),
            Err(problems) => {
                for problem in &problems {
                    tracing::error!("{problem}");
                }
                return ExitCode::from(super::EXIT_INVALID_CONFIG);
            }
        },
    };
    let tls = match args
        .tls
        .files()
        .map(ReloadingServerConfig::load)
        .transpose()
    {
        Ok(tls) => tls.map(Arc::new),
        Err(message) => {
            tracing::error!("{message}; not starting");
            return ExitCode::from(super::EXIT_INVALID_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args, start, options, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// What the agent starts serving.
enum Start {
    /// The files' snapshot, and the configuration it was made from (the health checks start from it).
    Files(Published, Box<AgentConfig>),
    /// Nothing until the cluster has been listed.
    Cluster(KubernetesSource),
}

async fn serve(
    args: &Args,
    start: Start,
    options: TranslateOptions,
    tls: Option<Arc<ReloadingServerConfig>>,
) -> Result<(), String> {
    let (stop, stopped) = watch::channel(false);
    let (state, cluster, version, initial) = match start {
        Start::Files(published, config) => {
            let version = published.snapshot.version.clone();
            (AgentState::new(published), None, version, Some(*config))
        }
        Start::Cluster(source) => {
            let client = kubernetes::client::connect(args.kubeconfig.as_deref()).await?;
            let status = Arc::new(ClusterStatus::default());
            let (views, views_rx) = watch::channel(None);
            tokio::spawn(kubernetes::watch::watch_cluster(
                client,
                source,
                views,
                status.clone(),
                stopped.clone(),
            ));
            let input = ClusterInput {
                views: views_rx,
                status: status.clone(),
            };
            let version = "(waiting for the Kubernetes API server)".to_owned();
            (
                AgentState::waiting_for_cluster(status),
                Some(input),
                version,
                None,
            )
        }
    };
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc)
        .await
        .map_err(|e| format!("cannot listen on --grpc {}: {e}", args.grpc))?;
    let admin_listener = tokio::net::TcpListener::bind(args.admin)
        .await
        .map_err(|e| format!("cannot listen on --admin {}: {e}", args.admin))?;
    let debug_listener = match args.debug_admin {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on --debug-admin {address}: {e}"))?,
        ),
        None => None,
    };
    let transport = match &tls {
        Some(tls) if tls.requires_client_certificates() => "mTLS",
        Some(_) => "TLS",
        None => "plaintext",
    };
    tracing::info!(grpc = %args.grpc, %transport, admin = %args.admin, debug_admin = ?args.debug_admin, config = %args.config.display(), %version, "serving");
    let grpc_task = tokio::spawn(grpc::serve(
        grpc_listener,
        state.clone(),
        stopped.clone(),
        tls,
    ));
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin::router(state.clone()),
        stopped.clone(),
    ));
    let debug_task = debug_listener.map(|listener| {
        tokio::spawn(admin::serve(
            listener,
            admin::debug_router(state.clone()),
            stopped.clone(),
        ))
    });
    let reload_task = tokio::spawn(watch_config(
        args.config.clone(),
        state,
        options,
        initial,
        cluster,
        stopped,
    ));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let debug = async {
            match debug_task {
                Some(task) => task.await,
                None => Ok(Ok(())),
            }
        };
        tokio::join!(grpc_task, admin_task, debug, reload_task)
    })
    .await;
    match finished {
        Ok((Ok(Ok(())), Ok(Ok(())), Ok(Ok(())), _)) => Ok(()),
        Ok((grpc, admin, debug, _)) => Err(format!(
            "server error at shutdown: grpc {grpc:?}, admin {admin:?}, debug admin {debug:?}"
        )),
        Err(_) => Err("servers did not stop within the shutdown grace period".to_owned()),
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
