//! The admin HTTP servers.
//!
//! - [`router`] (`--admin`): what kubelet probes, Prometheus and Envoy need — `/healthz`,
//!   `/readyz`, `/metrics`, and the filter's `.wasm` at `/wasm/<sha256>.wasm` for
//!   `filter.delivery: remote`. Safe to expose on the pod network.
//! - [`debug_router`] (`--debug-admin`, only when given; meant for 127.0.0.1): `/debug/snapshot`,
//!   `/debug/nodes`, `/debug/kubernetes` and `/debug/health`: the whole configuration, every node,
//!   what the Kubernetes source sees and the agent's own health checks — for an operator only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;

use crate::snapshot::ResourceType;
use crate::state::AgentState;

/// The admin router: probes, metrics and the `.wasm` module.
pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/wasm/{file}", get(wasm))
        .with_state(state)
}

/// The debug router: `/debug/snapshot`, `/debug/nodes`, `/debug/kubernetes`, `/debug/health`.
pub fn debug_router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/debug/snapshot", get(debug_snapshot))
        .route("/debug/nodes", get(debug_nodes))
        .route("/debug/kubernetes", get(debug_kubernetes))
        .route("/debug/health", get(debug_health))
        .with_state(state)
}

/// Serve `app` on `listener` until `shutdown` turns true.
///
/// # Errors
/// The I/O error that stopped the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
async fn readyz(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    // Ready once a complete snapshot is served (with a Kubernetes source: after every watch has
    // synced); reloads never unpublish it.
    if !state.is_ready() {
        let waiting = state
            .cluster
            .as_ref()
            .map(|c| c.waiting_for().join("; "))
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "waiting for the first configuration".to_owned());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {waiting}\n"),
        );
    }
    let version = state.current().snapshot.version.clone();
    (StatusCode::OK, format!("ready: snapshot {version}\n"))
}

async fn metrics(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.gauges())
            + &state
                .cluster
                .as_ref()
                .map(|c| c.render_metrics())
                .unwrap_or_default(),
    )
}

async fn debug_health(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    Json(state.health.view())
}

async fn debug_kubernetes(State(state): State<Arc<AgentState>>) -> axum::response::Response {
    match &state.cluster {
        Some(cluster) => Json(cluster.view()).into_response(),
        None => (StatusCode::NOT_FOUND, "no kubernetes source configured\n").into_response(),
    }
}

#[derive(Serialize)]
struct SnapshotView {
    version: String,
    config_hash: String,
    wasm_sha256: Option<String>,
    affinity: BTreeMap<String, AffinityView>,
    types: BTreeMap<&'static str, TypeView>,
}

#[derive(Serialize)]
struct AffinityView {
    mode: &'static str,
    served: &'static str,
    reason: String,
}

#[derive(Serialize)]
struct TypeView {
    type_url: &'static str,
    version: String,
    resources: BTreeMap<String, String>,
}

async fn debug_snapshot(State(state): State<Arc<AgentState>>) -> Json<SnapshotView> {
    let published = state.current();
    let types = ResourceType::ALL
        .into_iter()
        .map(|t| {
            let of_type = published.snapshot.of(t);
            let resources = of_type
                .resources
                .values()
                .map(|r| (r.name.to_string(), r.version.to_string()))
                .collect();
            (
                t.short_name(),
                TypeView {
                    type_url: t.type_url(),
                    version: of_type.version.clone(),
                    resources,
                },
            )
        })
        .collect();
    Json(SnapshotView {
        version: published.snapshot.version.clone(),
        config_hash: published.config_hash.clone(),
        wasm_sha256: published.wasm.as_ref().map(|w| w.sha256.clone()),
        affinity: published
            .affinity
            .iter()
            .map(|(name, summary)| {
                let view = AffinityView {
                    mode: summary.mode,
                    served: summary.served,
                    reason: summary.reason.clone(),
                };
                (name.clone(), view)
            })
            .collect(),
        types,
    })
}

async fn debug_nodes(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    Json(state.nodes.all())
}

async fn wasm(
    State(state): State<Arc<AgentState>>,
    Path(file): Path<String>,
) -> axum::response::Response {
    let published = state.current();
    match &published.wasm {
        Some(artifact) if file == format!("{}.wasm", artifact.sha256) => (
            [(header::CONTENT_TYPE, "application/wasm")],
            artifact.bytes.to_vec(),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such module\n").into_response(),
    }
}
