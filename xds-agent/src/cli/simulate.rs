//! `xds-agent simulate --config F --service S --keys N [--remove ADDR]... [--add ADDR]...`: how
//! N keys (`key-0` … `key-{N-1}`) spread over the service's backends, and how many move when
//! backends are removed or added, by reproducing Envoy's choice with `affinity-predictor`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use std::net::SocketAddr;

use affinity_predictor::{SimulationReport, simulate};

use super::prediction::{PredictionError, ServicePrediction, print_report};
use crate::model::{Endpoint, EndpointAddress, EndpointHealth};

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file or directory of YAML files.
    #[arg(long)]
    pub config: PathBuf,
    /// The service (cluster) to simulate.
    #[arg(long)]
    pub service: String,
    /// Number of distinct keys (`key-0`, `key-1`, …), 1 ..= 10,000,000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub keys: u64,
    /// The key source kind the keys come from (default: the filter's first key source).
    #[arg(long)]
    pub source: Option<String>,
    /// Remove the backend with this address (`ip:port`); repeatable.
    #[arg(long, value_name = "ADDR")]
    pub remove: Vec<String>,
    /// Add a backend with this address (`ip:port`, weight 1); repeatable.
    #[arg(long, value_name = "ADDR")]
    pub add: Vec<String>,
}

/// Run `simulate`.
#[must_use]
pub fn run(args: &Args) -> ExitCode {
    print_report(run_simulation(args))
}

fn run_simulation(args: &Args) -> Result<String, PredictionError> {
    let prediction = ServicePrediction::load(&args.config, &args.service)?;
    let before = prediction.balancer(prediction.hosts()?)?;
    let changed = changed_endpoints(&prediction.service.endpoints, &args.remove, &args.add)?
        .map(|endpoints| prediction.with_endpoints(endpoints));
    let after = match &changed {
        Some(changed) => Some(changed.balancer(changed.hosts()?)?),
        None => None,
    };
    let mut hashes = Vec::with_capacity(usize::try_from(args.keys).unwrap_or(0));
    for i in 0..args.keys {
        let key = format!("key-{i}");
        hashes.push(prediction.request_hash(&key, args.source.as_deref())?.hash);
    }
    let report = simulate(&before, after.as_ref(), &hashes);
    let mut text = render(&prediction, changed.as_ref(), &args.service, &report);
    let _ = writeln!(
        text,
        "exact max/fair:      {:.3} (largest share of the hash space over its weight's share: \
         the limit for many keys)",
        before.max_over_fair_share()
    );
    Ok(text)
}

/// The endpoints after `--remove` and `--add`, or `None` when neither is given.
fn changed_endpoints(
    endpoints: &[Endpoint],
    remove: &[String],
    add: &[String],
) -> Result<Option<Vec<Endpoint>>, PredictionError> {
    if remove.is_empty() && add.is_empty() {
        return Ok(None);
    }
    for address in remove {
        if !endpoints.iter().any(|e| &e.address.to_string() == address) {
            let known: Vec<String> = endpoints.iter().map(|e| e.address.to_string()).collect();
            return Err(PredictionError(format!(
                "--remove: no backend {address} (backends: {})",
                known.join(", ")
            )));
        }
    }
    let mut changed: Vec<Endpoint> = endpoints
        .iter()
        .filter(|e| !remove.contains(&e.address.to_string()))
        .cloned()
        .collect();
    for address in add {
        let parsed: SocketAddr = address
            .parse()
            .map_err(|_| PredictionError(format!("--add: {address:?} is not ip:port")))?;
        changed.push(Endpoint {
            address: EndpointAddress::Ip(parsed),
            weight: 1,
            hash_key: None,
            health: EndpointHealth::Serving,
        });
    }
    if changed.is_empty() {
        return Err(PredictionError(
            "--remove: removing every backend leaves nothing to pick".to_owned(),
        ));
    }
    Ok(Some(changed))
}

fn render(
    prediction: &ServicePrediction,
    changed: Option<&ServicePrediction>,
    service: &str,
    report: &SimulationReport,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "service:       {service}");
    let _ = writeln!(
        out,
        "load balancer: {}",
        prediction.describe_load_balancer()
    );
    let _ = writeln!(out, "keys:          {}", report.keys);
    let _ = writeln!(
        out,
        "\n{:<24} {:<16} {:>6} {:>10} {:>8} {:>9}",
        "backend", "hashKey", "weight", "keys", "share", "expected"
    );
    #[allow(clippy::cast_precision_loss)]
    for load in &report.loads {
        let share = if report.keys == 0 {
            0.0
        } else {
            load.keys as f64 / report.keys as f64
        };
        let _ = writeln!(
            out,
            "{:<24} {:<16} {:>6} {:>10} {:>7.2}% {:>8.2}%",
            load.address,
            load.hash_key.as_deref().unwrap_or("-"),
            load.weight,
            load.keys,
            share * 100.0,
            load.expected_share * 100.0
        );
    }
    let _ = writeln!(out, "\nmax/mean:            {:.3}", report.max_over_mean);
    let _ = writeln!(
        out,
        "max/fair share:      {:.3} (by weight)",
        report.max_over_fair_share
    );
    if let Some(changed) = changed {
        let _ = writeln!(
            out,
            "after the change:    {} backends, {}",
            changed.service.endpoints.len(),
            changed.describe_load_balancer()
        );
    }
    if let Some(churn) = report.churn {
        let _ = writeln!(
            out,
            "keys moved:          {} ({:.2}%); at least {:.2}% must move (keys of removed or added backends)",
            churn.moved_keys,
            churn.moved_fraction * 100.0,
            churn.necessary_fraction * 100.0
        );
    }
    out
}
