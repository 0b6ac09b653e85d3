//! ADS load client for `make bench`: the real `xds-agent serve` serving 1,000 services × 10
//! endpoints to 100 concurrent ADS streams (state of the world or delta), each subscribing like
//! Envoy and ACKing every response with its nonce. Prints one JSON line.
//!
//! What it does and measures:
//! 1. writes the configuration (one listener, `--services` × `--endpoints`, ring hash), starts
//!    `--agent serve` on free 127.0.0.1 ports and records the agent's RSS (`VmRSS`);
//! 2. opens `--streams` streams, one gRPC connection each (`--protocol sotw|delta`): CDS and
//!    LDS wildcard, then EDS for every EDS cluster received and RDS for every route configuration
//!    the listeners' HTTP connection managers name; waits until every stream has ACKed all four
//!    types; records the agent's RSS while serving them;
//! 3. `--edits` times: changes one endpoint's port in the file (written to a temporary file and
//!    renamed) and waits until every stream has received AND ACKed a new EDS version. Times:
//!    file written → every stream ACKed (the agent learns of the change by a file
//!    notification, or by its 1 s poll where notifications are unavailable), file written →
//!    first stream received it, and first received → every stream ACKed. Bytes: what each stream
//!    received for the change (gRPC messages: protobuf plus the 5-byte gRPC prefix; HTTP/2
//!    framing excluded).
//!
//! `--source kubernetes` serves the endpoints from a Kubernetes API server instead: the e2e crate's
//! fake (`--kube-fake`, the `kube_fake` example, started as its own process) with the Service
//! `shop/web` and `--slices` EndpointSlices of `--endpoints` endpoints each (default 100 × 100), the
//! agent started with `--kubeconfig` and one service `web` (one cluster, one ClusterLoadAssignment
//! of every endpoint). Agent start → `/readyz` 200 is the initial list of every endpoint; each edit
//! moves one endpoint of one slice to a new address (the fake's `apply`), and the change → every
//! stream ACKed time is split where the new EDS version is first seen: at `/debug/snapshot` (polled
//! every 5 ms) or by a stream, whichever is first (a busy agent answers its admin API late).
//!
//! Bounded: everything stops by itself after `--timeout-seconds` (default 85); the agent (and the
//! fake) is killed on exit.
//!
//! `cargo run --release -p xds-agent --example ads_load -- --agent target/release/xds-agent --protocol delta`
//!
//! `ads_load --source kubernetes --kube-fake target/release/examples/kube_fake --protocol sotw`

#[path = "ads_load/admin.rs"]
mod admin;
#[path = "bench_support/mod.rs"]
mod bench_support;
#[path = "ads_load/kubernetes.rs"]
mod kubernetes;

use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DiscoveryRequest,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};
use xds_agent::snapshot::ResourceType;

use admin::Admin;
use bench_support::{config_yaml, flag, median, millis};
use kubernetes::KubeFake;

type BoxError = Box<dyn Error + Send + Sync>;

/// The four types an Envoy of this configuration subscribes to.
const TYPES: [ResourceType; 4] = [
    ResourceType::Cluster,
    ResourceType::ClusterLoadAssignment,
    ResourceType::Listener,
    ResourceType::RouteConfiguration,
];
/// gRPC's length-prefixed message framing: 1 flag byte and a 4-byte length.
const GRPC_PREFIX_BYTES: u64 = 5;
/// Responses of one type can be large (SotW EDS: every cluster's endpoints).
const MAX_MESSAGE_BYTES: usize = 256 << 20;
/// How often `/debug/snapshot` is asked for the new EDS version after a Kubernetes change.
const SNAPSHOT_POLL: Duration = Duration::from_millis(5);
/// How long a Kubernetes-sourced agent may take to list everything and answer `/readyz`.
const READY_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Sotw,
    Delta,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sotw" => Ok(Self::Sotw),
            "delta" => Ok(Self::Delta),
            _ => Err("expected sotw or delta".to_owned()),
        }
    }
}

/// Where the agent's endpoints come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The generated config file (`--services` × `--endpoints`); edits rewrite it.
    File,
    /// The fake API server (`--slices` × `--endpoints`); edits apply one slice.
    Kubernetes,
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "file" => Ok(Self::File),
            "kubernetes" => Ok(Self::Kubernetes),
            _ => Err("expected file or kubernetes".to_owned()),
        }
    }
}

struct Args {
    agent: PathBuf,
    protocol: Protocol,
    source: Source,
    kube_fake: PathBuf,
    streams: usize,
    services: usize,
    /// Per service (file) or per EndpointSlice (kubernetes).
    endpoints: usize,
    slices: usize,
    edits: usize,
    timeout: Duration,
}

fn main() -> Result<(), BoxError> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let source = flag(&raw, "--source", Source::File)?;
    let args = Args {
        agent: flag(&raw, "--agent", PathBuf::from("target/release/xds-agent"))?,
        protocol: flag(&raw, "--protocol", Protocol::Sotw)?,
        source,
        kube_fake: flag(
            &raw,
            "--kube-fake",
            PathBuf::from("target/release/examples/kube_fake"),
        )?,
        streams: flag(&raw, "--streams", 100_usize)?.max(1),
        services: match source {
            Source::File => flag(&raw, "--services", 1000_usize)?.max(1),
            Source::Kubernetes => 1,
        },
        endpoints: match source {
            Source::File => flag(&raw, "--endpoints", 10_usize)?,
            Source::Kubernetes => flag(&raw, "--endpoints", 100_usize)?,
        }
        .max(1),
        slices: flag(&raw, "--slices", 100_usize)?.max(1),
        edits: flag(&raw, "--edits", 5_usize)?.max(1),
        timeout: Duration::from_secs(flag(&raw, "--timeout-seconds", 85_u64)?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let workdir = std::env::temp_dir().join(format!("ads-load-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let result = runtime.block_on(async {
        tokio::time::timeout(args.timeout, run(&args, &workdir))
            .await
            .map_err(|_| format!("did not finish within {:?}", args.timeout))?
    });
    // The agent is stopped (its guard dropped) by now; the streams end with the runtime.
    drop(runtime);
    match result {
        Ok(json) => {
            let _ = std::fs::remove_dir_all(&workdir);
            println!("{json}");
            Ok(())
        }
        Err(e) => Err(format!(
            "{e} (the agent's log is kept in {})",
            workdir.join("agent.log").display()
        )
        .into()),
    }
}

/// The agent process, killed when dropped.
struct AgentProcess(Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One ACKed response, reported by a stream.
struct Acked {
    stream: usize,
    resource_type: ResourceType,
    version: String,
    bytes: u64,
    received_at: Instant,
    acked_at: Instant,
}

/// What the main task knows of every stream.
struct Streams {
    events: mpsc::UnboundedReceiver<Result<Acked, String>>,
    acked: Vec<HashMap<ResourceType, String>>,
    bytes: Vec<u64>,
}

impl Streams {
    /// Apply events until `done` holds.
    async fn until(
        &mut self,
        mut on_event: impl FnMut(&Acked),
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), BoxError> {
        while !done(self) {
            let event = self.events.recv().await.ok_or("every stream ended")??;
            on_event(&event);
            self.bytes[event.stream] += event.bytes;
            self.acked[event.stream].insert(event.resource_type, event.version);
        }
        Ok(())
    }
}

/// Where the endpoints come from, and how one of them is changed.
enum Endpoints {
    /// The config file: an edit rewrites it with one endpoint's port changed.
    File { config: PathBuf, listen: u16 },
    /// The fake API server: an edit moves one endpoint of one slice.
    Kubernetes(KubeFake),
}

/// One edit as made.
struct Change {
    /// File renamed into place, or the `apply` command sent.
    made_at: Instant,
    /// The fake's `apply` duration (Kubernetes only).
    apply_ms: Option<f64>,
}

impl Endpoints {
    async fn change(&mut self, args: &Args, edit: usize) -> Result<Change, BoxError> {
        match self {
            Endpoints::File { config, listen } => {
                let port = 29000 + u16::try_from(edit % 1000)?;
                write_atomically(
                    config,
                    &config_yaml(args.services, args.endpoints, *listen, Some(port)),
                )?;
                Ok(Change {
                    made_at: Instant::now(),
                    apply_ms: None,
                })
            }
            Endpoints::Kubernetes(fake) => {
                let applied = fake.change(edit).await?;
                Ok(Change {
                    made_at: applied.sent_at,
                    apply_ms: Some(applied.apply_ms),
                })
            }
        }
    }
}

async fn run(args: &Args, workdir: &Path) -> Result<String, BoxError> {
    let config_path = workdir.join("config.yaml");
    let listen = free_port()?;
    let mut endpoints = match args.source {
        Source::File => {
            write_atomically(
                &config_path,
                &config_yaml(args.services, args.endpoints, listen, None),
            )?;
            Endpoints::File {
                config: config_path.clone(),
                listen,
            }
        }
        Source::Kubernetes => {
            let fake =
                KubeFake::start(&args.kube_fake, args.slices, args.endpoints, args.timeout).await?;
            write_atomically(&config_path, &kubernetes::config_yaml(listen))?;
            Endpoints::Kubernetes(fake)
        }
    };
    let grpc = free_port()?;
    let admin = Admin::on_ports(free_port()?, free_port()?);
    let log = std::fs::File::create(workdir.join("agent.log"))?;
    let mut command = Command::new(&args.agent);
    command
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .args(["--grpc", &format!("127.0.0.1:{grpc}")])
        .args(admin.agent_args());
    if let Endpoints::Kubernetes(fake) = &endpoints {
        command.arg("--kubeconfig").arg(&fake.kubeconfig);
    }
    let started = Instant::now();
    let agent = AgentProcess(
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", args.agent.display()))?,
    );
    if args.source == Source::Kubernetes {
        // Ready = every watch has listed everything and the snapshot holds every endpoint.
        admin.wait_ready(READY_LIMIT).await?;
    }
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))?;
    let first = loop {
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("the agent never accepted ADS connections: {e}").into()),
        }
    };
    let agent_ready = started.elapsed();
    let (rss_idle, _) = memory_kib(agent.0.id())?;

    let (events_tx, events) = mpsc::unbounded_channel();
    let started = Instant::now();
    for stream in 0..args.streams {
        let channel = if stream == 0 {
            first.clone()
        } else {
            endpoint.connect().await?
        };
        let events = events_tx.clone();
        let node = format!("ads-load-{stream}");
        let protocol = args.protocol;
        tokio::spawn(async move {
            let outcome = match protocol {
                Protocol::Sotw => sotw_stream(stream, channel, node, events.clone()).await,
                Protocol::Delta => delta_stream(stream, channel, node, events.clone()).await,
            };
            let _ = events.send(Err(match outcome {
                Ok(()) => format!("stream {stream} ended"),
                Err(e) => format!("stream {stream}: {e}"),
            }));
        });
    }
    drop(events_tx);
    let mut streams = Streams {
        events,
        acked: vec![HashMap::new(); args.streams],
        bytes: vec![0; args.streams],
    };
    streams
        .until(
            |_| {},
            |s| {
                s.acked
                    .iter()
                    .all(|acked| TYPES.iter().all(|t| acked.contains_key(t)))
            },
        )
        .await?;
    let initial_sync = started.elapsed();
    let mut initial_bytes = streams.bytes.clone();
    let (rss_serving, _) = memory_kib(agent.0.id())?;

    let mut to_all_acked = Vec::new();
    let mut to_first_received = Vec::new();
    let mut first_to_all_acked = Vec::new();
    let mut to_snapshot = Vec::new();
    let mut to_debug_snapshot = Vec::new();
    let mut snapshot_to_all_acked = Vec::new();
    let mut apply_ms = Vec::new();
    let mut change_bytes = Vec::new();
    for edit in 0..args.edits {
        let eds_before: Vec<String> = streams
            .acked
            .iter()
            .map(|acked| acked[&ResourceType::ClusterLoadAssignment].clone())
            .collect();
        let bytes_before = streams.bytes.clone();
        // Kubernetes: when the agent's snapshot has the change, seen at /debug/snapshot.
        let snapshot_before = match args.source {
            Source::Kubernetes => Some(admin.eds_version().await?),
            Source::File => None,
        };
        let change = endpoints.change(args, edit).await?;
        let written = change.made_at;
        apply_ms.extend(change.apply_ms);
        let snapshot_seen = async {
            match &snapshot_before {
                Some(before) => admin
                    .wait_eds_changed(before, SNAPSHOT_POLL)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let mut first_received: Option<Instant> = None;
        let mut last_acked = written;
        let all_acked = streams.until(
            |event| {
                if event.resource_type == ResourceType::ClusterLoadAssignment
                    && event.version != eds_before[event.stream]
                {
                    first_received = Some(
                        first_received.map_or(event.received_at, |t| t.min(event.received_at)),
                    );
                    last_acked = last_acked.max(event.acked_at);
                }
            },
            |s| {
                s.acked
                    .iter()
                    .zip(&eds_before)
                    .all(|(acked, before)| acked[&ResourceType::ClusterLoadAssignment] != *before)
            },
        );
        let (snapshot_seen, all_acked) = tokio::join!(snapshot_seen, all_acked);
        all_acked?;
        let first_received = first_received.ok_or("no stream received the change")?;
        if let Some(seen) = snapshot_seen? {
            // A busy agent may answer /debug/snapshot after it pushed the change: the snapshot was
            // there by the first push at the latest.
            let published = seen.min(first_received);
            to_debug_snapshot.push(seen.saturating_duration_since(written));
            to_snapshot.push(published.saturating_duration_since(written));
            snapshot_to_all_acked.push(last_acked.saturating_duration_since(published));
        }
        to_all_acked.push(last_acked - written);
        to_first_received.push(first_received.saturating_duration_since(written));
        first_to_all_acked.push(last_acked - first_received);
        // Anything else the change caused arrives within this pause.
        let settle = Instant::now() + Duration::from_millis(300);
        while let Ok(Some(event)) =
            tokio::time::timeout_at(settle.into(), streams.events.recv()).await
        {
            let event = event?;
            streams.bytes[event.stream] += event.bytes;
            streams.acked[event.stream].insert(event.resource_type, event.version);
        }
        let mut per_stream: Vec<u64> = streams
            .bytes
            .iter()
            .zip(&bytes_before)
            .map(|(after, before)| after - before)
            .collect();
        per_stream.sort_unstable();
        change_bytes.push(per_stream);
    }
    let (rss_end, hwm) = memory_kib(agent.0.id())?;
    drop(agent);

    initial_bytes.sort_unstable();
    let runs_ms = |samples: &[Duration]| samples.iter().map(|d| millis(*d)).collect::<Vec<_>>();
    let last_change = change_bytes.last().cloned().unwrap_or_default();
    let mut json = serde_json::json!({
        "protocol": match args.protocol { Protocol::Sotw => "sotw", Protocol::Delta => "delta" },
        "source": match args.source { Source::File => "file", Source::Kubernetes => "kubernetes" },
        "streams": args.streams,
        "services": args.services,
        "endpoints": match args.source {
            Source::File => args.endpoints,
            Source::Kubernetes => args.endpoints * args.slices,
        },
        "edits": args.edits,
        "agent_ready_ms": millis(agent_ready),
        "initial_sync_all_streams_ms": millis(initial_sync),
        "initial_bytes_per_stream": initial_bytes.get(initial_bytes.len() / 2),
        "agent_rss_idle_mib": mib(rss_idle),
        "agent_rss_serving_mib": mib(rss_serving),
        "agent_rss_after_edits_mib": mib(rss_end),
        "agent_peak_rss_mib": mib(hwm),
        "change_to_all_acked_ms": millis(median(&mut to_all_acked.clone())),
        "change_to_all_acked_runs_ms": runs_ms(&to_all_acked),
        "change_to_first_received_ms": millis(median(&mut to_first_received)),
        "first_received_to_all_acked_ms": millis(median(&mut first_to_all_acked.clone())),
        "first_received_to_all_acked_runs_ms": runs_ms(&first_to_all_acked),
        "change_bytes_per_stream_median": last_change.get(last_change.len() / 2),
        "change_bytes_per_stream_max": last_change.last(),
    });
    if let (Endpoints::Kubernetes(fake), Some(fields)) = (&endpoints, json.as_object_mut()) {
        apply_ms.sort_by(f64::total_cmp);
        let kubernetes = serde_json::json!({
            "slices": args.slices,
            "endpoints_per_slice": args.endpoints,
            "kube_fake_load_ms": fake.load_ms,
            "apply_ms": apply_ms.get(apply_ms.len() / 2),
            "change_to_snapshot_ms": millis(median(&mut to_snapshot.clone())),
            "change_to_snapshot_runs_ms": runs_ms(&to_snapshot),
            "change_to_debug_snapshot_ms": millis(median(&mut to_debug_snapshot)),
            "snapshot_to_all_acked_ms": millis(median(&mut snapshot_to_all_acked.clone())),
            "snapshot_to_all_acked_runs_ms": runs_ms(&snapshot_to_all_acked),
        });
        fields.extend(kubernetes.as_object().cloned().unwrap_or_default());
    }
    Ok(json.to_string())
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// `VmRSS` and `VmHWM` (peak RSS) of `pid`, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64), BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64, BoxError> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or(format!("/proc/{pid}/status has no {name}"))?;
        let value = line.split_whitespace().nth(1).unwrap_or_default();
        Ok(value.parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn write_atomically(path: &Path, text: &str) -> Result<(), BoxError> {
    let temporary = path.with_extension("yaml.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn node(id: &str) -> Node {
    Node {
        id: id.to_owned(),
        cluster: "ads-load".to_owned(),
        ..Node::default()
    }
}

/// The names Envoy subscribes to after receiving `resource`: the EDS service of an EDS cluster,
/// the RDS route configuration of a listener's HTTP connection manager.
fn follow_up_names(resource_type: ResourceType, resource: &Any) -> Result<Vec<String>, BoxError> {
    Ok(match resource_type {
        ResourceType::Cluster => {
            let cluster = Cluster::decode(resource.value.as_slice())?;
            let eds = cluster.cluster_discovery_type
                == Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            let service_name = cluster
                .eds_cluster_config
                .map(|c| c.service_name)
                .filter(|name| !name.is_empty())
                .unwrap_or(cluster.name);
            if eds { vec![service_name] } else { Vec::new() }
        }
        ResourceType::Listener => {
            let listener = Listener::decode(resource.value.as_slice())?;
            let mut names = Vec::new();
            for filter in listener.filter_chains.iter().flat_map(|c| &c.filters) {
                if let Some(ConfigType::TypedConfig(config)) = &filter.config_type
                    && let Ok(manager) = HttpConnectionManager::decode(config.value.as_slice())
                    && let Some(RouteSpecifier::Rds(rds)) = manager.route_specifier
                {
                    names.push(rds.route_config_name);
                }
            }
            names
        }
        _ => Vec::new(),
    })
}

/// The type a follow-up subscription is for.
fn follow_up_type(resource_type: ResourceType) -> Option<ResourceType> {
    match resource_type {
        ResourceType::Cluster => Some(ResourceType::ClusterLoadAssignment),
        ResourceType::Listener => Some(ResourceType::RouteConfiguration),
        _ => None,
    }
}

async fn sotw_stream(
    stream: usize,
    channel: Channel,
    node_id: String,
    events: mpsc::UnboundedSender<Result<Acked, String>>,
) -> Result<(), BoxError> {
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (requests, outgoing) = mpsc::unbounded_channel();
    let request =
        |t: ResourceType, names: &BTreeSet<String>, version: &str, nonce: &str| DiscoveryRequest {
            node: Some(node(&node_id)),
            type_url: t.type_url().to_owned(),
            resource_names: names.iter().cloned().collect(),
            version_info: version.to_owned(),
            response_nonce: nonce.to_owned(),
            ..DiscoveryRequest::default()
        };
    let mut subscribed: HashMap<ResourceType, BTreeSet<String>> = HashMap::new();
    // Last accepted (version, nonce) per type, repeated when the subscription changes.
    let mut last: HashMap<ResourceType, (String, String)> = HashMap::new();
    for t in [ResourceType::Cluster, ResourceType::Listener] {
        requests.send(request(t, &BTreeSet::new(), "", ""))?;
    }
    let mut responses = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(outgoing))
        .await?
        .into_inner();
    while let Some(response) = responses.message().await? {
        let received_at = Instant::now();
        let bytes = response.encoded_len() as u64 + GRPC_PREFIX_BYTES;
        let resource_type = ResourceType::from_type_url(&response.type_url)
            .ok_or(format!("unexpected type {}", response.type_url))?;
        if let Some(follow_up) = follow_up_type(resource_type) {
            let mut names = BTreeSet::new();
            for resource in &response.resources {
                names.extend(follow_up_names(resource_type, resource)?);
            }
            if subscribed.get(&follow_up) != Some(&names) {
                let (version, nonce) = last.get(&follow_up).cloned().unwrap_or_default();
                requests.send(request(follow_up, &names, &version, &nonce))?;
                subscribed.insert(follow_up, names);
            }
        }
        let names = subscribed.get(&resource_type).cloned().unwrap_or_default();
        requests.send(request(
            resource_type,
            &names,
            &response.version_info,
            &response.nonce,
        ))?;
        let acked_at = Instant::now();
        last.insert(
            resource_type,
            (response.version_info.clone(), response.nonce),
        );
        events.send(Ok(Acked {
            stream,
            resource_type,
            version: response.version_info,
            bytes,
            received_at,
            acked_at,
        }))?;
    }
    Ok(())
}

async fn delta_stream(
    stream: usize,
    channel: Channel,
    node_id: String,
    events: mpsc::UnboundedSender<Result<Acked, String>>,
) -> Result<(), BoxError> {
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (requests, outgoing) = mpsc::unbounded_channel();
    for t in [ResourceType::Cluster, ResourceType::Listener] {
        requests.send(DeltaDiscoveryRequest {
            node: Some(node(&node_id)),
            type_url: t.type_url().to_owned(),
            ..DeltaDiscoveryRequest::default()
        })?;
    }
    let mut responses = client
        .delta_aggregated_resources(UnboundedReceiverStream::new(outgoing))
        .await?
        .into_inner();
    // Follow-up names each resource asked for, by the resource's name, per type.
    let mut wanted: HashMap<ResourceType, HashMap<String, Vec<String>>> = HashMap::new();
    let mut subscribed: HashMap<ResourceType, BTreeSet<String>> = HashMap::new();
    while let Some(response) = responses.message().await? {
        let received_at = Instant::now();
        let bytes = response.encoded_len() as u64 + GRPC_PREFIX_BYTES;
        let resource_type = ResourceType::from_type_url(&response.type_url)
            .ok_or(format!("unexpected type {}", response.type_url))?;
        if let Some(follow_up) = follow_up_type(resource_type) {
            let by_resource = wanted.entry(resource_type).or_default();
            for resource in &response.resources {
                if let Some(body) = &resource.resource {
                    by_resource
                        .insert(resource.name.clone(), follow_up_names(resource_type, body)?);
                }
            }
            for name in &response.removed_resources {
                by_resource.remove(name);
            }
            let names: BTreeSet<String> = by_resource.values().flatten().cloned().collect();
            let current = subscribed.entry(follow_up).or_default();
            if *current != names {
                requests.send(DeltaDiscoveryRequest {
                    type_url: follow_up.type_url().to_owned(),
                    resource_names_subscribe: names.difference(current).cloned().collect(),
                    resource_names_unsubscribe: current.difference(&names).cloned().collect(),
                    ..DeltaDiscoveryRequest::default()
                })?;
                *current = names;
            }
        }
        requests.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..DeltaDiscoveryRequest::default()
        })?;
        events.send(Ok(Acked {
            stream,
            resource_type,
            version: response.system_version_info,
            bytes,
            received_at,
            acked_at: Instant::now(),
        }))?;
    }
    Ok(())
}
