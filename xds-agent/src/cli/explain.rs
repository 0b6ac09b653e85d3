//! `xds-agent explain --config F --service S --key K [--key K2 ...] [--source KIND]`: the backend
//! Envoy picks for a request whose affinity key is K, by reproducing the filter's hashing (or,
//! for a service served natively, Envoy's own `hash_policy` over the value) and Envoy's ring hash
//! or Maglev with `affinity-predictor`. It prints whether the service is served natively or by
//! the filter, and why. `--body FILE` (or `-` for standard
//! input) runs the service's whole filter configuration on a JSON request body instead, as the
//! filter would for a `POST` with `content-type: application/json` and no other key in its headers,
//! and prints the key it finds, its source and the backend.
//!
//! The prediction assumes every endpoint is healthy: Envoy builds its ring or table from the
//! healthy hosts only (all of them again in panic mode), so while health checks or outlier
//! detection exclude a backend, its keys go elsewhere. With bounded load (`hashBalanceFactor`) a
//! key moves on while its host is over the bound.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use super::prediction::{KeyHash, PredictionError, ServicePrediction, print_report};

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file or directory of YAML files.
    #[arg(long)]
    pub config: PathBuf,
    /// The service (cluster) the request is routed to.
    #[arg(long)]
    pub service: String,
    /// The affinity key the request carries (before the filter's normalisation and hashing);
    /// repeat for several keys.
    #[arg(long, required_unless_present = "body")]
    pub key: Vec<String>,
    /// The key source kind it comes from (`header`, `cookie`, `query`, `sourceIp`,
    /// `composite`); default: the kind of the filter's first key source. A `composite` key is
    /// given as the filter joins it, e.g. `header:4:acme|header:3:bob`.
    #[arg(long)]
    pub source: Option<String>,
    /// A JSON request body (a file, or `-` for standard input): the filter's key sources are
    /// tried on it as on a `POST` with `content-type: application/json`.
    #[arg(long, conflicts_with_all = ["key", "source"])]
    pub body: Option<PathBuf>,
}

/// Run `explain`.
#[must_use]
pub fn run(args: &Args) -> ExitCode {
    print_report(explain(args))
}

fn explain(args: &Args) -> Result<String, PredictionError> {
    let prediction = ServicePrediction::load(&args.config, &args.service)?;
    let balancer = prediction.balancer(prediction.hosts()?)?;
    let mut report = format!("service:       {}\n", args.service);
    report.push_str(&format!(
        "load balancer: {}\n",
        prediction.describe_load_balancer()
    ));
    report.push_str(&format!(
        "affinity:      {}\n",
        prediction.describe_affinity()
    ));
    let mut hashes = Vec::new();
    if let Some(path) = &args.body {
        let body = read_body(path)?;
        let (key_hash, source) = prediction.body_hash(&body)?;
        hashes.push((
            format!("(from the body, source {})", source.as_str()),
            key_hash,
        ));
    }
    for key in &args.key {
        hashes.push((
            key.clone(),
            prediction.request_hash(key, args.source.as_deref())?,
        ));
    }
    for (key, key_hash) in hashes {
        report_key(&mut report, &key, &key_hash, &balancer);
    }
    Ok(report)
}

fn read_body(path: &PathBuf) -> Result<Vec<u8>, PredictionError> {
    let mut body = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(path).map(|bytes| body = bytes)
    };
    read.map_err(|error| PredictionError(format!("--body {}: {error}", path.display())))?;
    Ok(body)
}

fn report_key(
    report: &mut String,
    key: &str,
    key_hash: &KeyHash,
    balancer: &affinity_predictor::Balancer,
) {
    let host = balancer.pick(key_hash.hash);
    report.push_str(&format!("\nkey:           {key}\n"));
    if let Some((header, value)) = &key_hash.header {
        report.push_str(&format!(
            "filter writes: {header}: {}\n",
            String::from_utf8_lossy(value)
        ));
    }
    report.push_str(&format!(
        "envoy hashes:  {} = {:?}\n",
        key_hash.hashed_what,
        String::from_utf8_lossy(&key_hash.hashed)
    ));
    report.push_str(&format!(
        "request hash:  {} (0x{:016x})\n",
        key_hash.hash, key_hash.hash
    ));
    report.push_str(&format!("backend:       {}", host.address));
    if let Some(hash_key) = &host.hash_key {
        report.push_str(&format!(" (hashKey {hash_key})"));
    }
    report.push_str(&format!(" weight {}\n", host.weight));
}
