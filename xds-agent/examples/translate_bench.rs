//! In-process benchmark of the agent's pure path from configuration to wire bytes, printing one
//! JSON line per case (used by `make bench`):
//!
//! - `snapshot`: 1,000 services × 10 endpoints (`--services`, `--endpoints`) behind one
//!   listener: YAML load and validation, [`translate`], protobuf encoding of every resource, and
//!   [`Snapshot::new`] (pack into `Any`, consistency check, sha256 versions: what the agent does
//!   on every configuration change).
//! - `cla`: one ClusterLoadAssignment of 1,000 endpoints (`--cla-endpoints`):
//!   [`load_assignment`] and its encoding.
//!
//! Times are medians over `--iterations` (`--cla-iterations`) runs after one warm-up run.
//!
//! `cargo run --release -p xds-agent --example translate_bench`

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::error::Error;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use prost::Message;
use xds_agent::config::{Source, load_sources};
use xds_agent::model::AgentConfig;
use xds_agent::snapshot::Snapshot;
use xds_agent::translate::{Resources, TranslateOptions, load_assignment, translate};

use bench_support::{config_yaml, flag, median, millis};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let services = flag(&args, "--services", 1000_usize)?;
    let endpoints = flag(&args, "--endpoints", 10_usize)?;
    let iterations = flag(&args, "--iterations", 15_usize)?.max(1);
    let cla_endpoints = flag(&args, "--cla-endpoints", 1000_usize)?;
    let cla_iterations = flag(&args, "--cla-iterations", 301_usize)?.max(1);
    println!("{}", snapshot_case(services, endpoints, iterations)?);
    println!("{}", cla_case(cla_endpoints, cla_iterations)?);
    Ok(())
}

fn load(yaml: String) -> Result<AgentConfig, Box<dyn Error>> {
    let source = Source {
        file: PathBuf::from("bench.yaml"),
        text: yaml,
    };
    load_sources(&[source]).map_err(|errors| errors.to_string().into())
}

fn options() -> TranslateOptions {
    TranslateOptions {
        agent_admin_address: SocketAddr::from(([127, 0, 0, 1], 19000)),
    }
}

/// Encoded bytes per type: listeners, route configurations, clusters, load assignments.
fn encode_all(resources: &Resources) -> [usize; 4] {
    let sum = |bodies: Vec<Vec<u8>>| bodies.iter().map(Vec::len).sum::<usize>();
    [
        sum(resources
            .listeners
            .iter()
            .map(Message::encode_to_vec)
            .collect()),
        sum(resources
            .route_configurations
            .iter()
            .map(Message::encode_to_vec)
            .collect()),
        sum(resources
            .clusters
            .iter()
            .map(Message::encode_to_vec)
            .collect()),
        sum(resources
            .load_assignments
            .iter()
            .map(Message::encode_to_vec)
            .collect()),
    ]
}

fn snapshot_case(
    services: usize,
    endpoints: usize,
    iterations: usize,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let yaml = config_yaml(services, endpoints, 10000, None);
    let yaml_bytes = yaml.len();
    let options = options();
    let (mut load_times, mut translate_times, mut encode_times, mut snapshot_times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut bytes = [0; 4];
    for i in 0..=iterations {
        let started = Instant::now();
        let config = load(yaml.clone())?;
        let loaded = started.elapsed();
        let started = Instant::now();
        let resources = translate(&config, &options);
        let translated = started.elapsed();
        let started = Instant::now();
        bytes = black_box(encode_all(&resources));
        let encoded = started.elapsed();
        let started = Instant::now();
        let snapshot = Snapshot::new(&resources).map_err(|problems| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let snapshotted = started.elapsed();
        black_box(snapshot);
        if i > 0 {
            load_times.push(loaded);
            translate_times.push(translated);
            encode_times.push(encoded);
            snapshot_times.push(snapshotted);
        }
    }
    let translate_ms = median(&mut translate_times);
    let encode_ms = median(&mut encode_times);
    Ok(serde_json::json!({
        "case": "snapshot",
        "services": services,
        "endpoints": endpoints,
        "iterations": iterations,
        "yaml_bytes": yaml_bytes,
        "load_ms": millis(median(&mut load_times)),
        "translate_ms": millis(translate_ms),
        "encode_ms": millis(encode_ms),
        "translate_and_encode_ms": millis(translate_ms + encode_ms),
        "snapshot_ms": millis(median(&mut snapshot_times)),
        "bytes": {"lds": bytes[0], "rds": bytes[1], "cds": bytes[2], "eds": bytes[3]},
        "total_bytes": bytes.iter().sum::<usize>(),
    }))
}

fn cla_case(endpoints: usize, iterations: usize) -> Result<serde_json::Value, Box<dyn Error>> {
    let config = load(config_yaml(1, endpoints, 10000, None))?;
    let service = config
        .services
        .first()
        .ok_or("the generated configuration has no service")?;
    let (mut build_times, mut encode_times, mut total_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for i in 0..=iterations {
        let started = Instant::now();
        let assignment = load_assignment(black_box(service));
        let built = started.elapsed();
        let encoded_at = Instant::now();
        let encoded = assignment.encode_to_vec();
        let total = started.elapsed();
        bytes = black_box(encoded).len();
        if i > 0 {
            build_times.push(built);
            encode_times.push(total - (encoded_at - started));
            total_times.push(total);
        }
    }
    let total = median(&mut total_times);
    Ok(serde_json::json!({
        "case": "cla",
        "endpoints": endpoints,
        "iterations": iterations,
        "build_ms": millis(median(&mut build_times)),
        "encode_ms": millis(median(&mut encode_times)),
        "build_and_encode_ms": millis(total),
        "bytes": bytes,
        "goal_ms": 1.0,
        "goal_met": total <= Duration::from_millis(1),
    }))
}
