//! The fake Kubernetes API server ([`e2e::FakeApiServer`]) as a process, for benchmarks that drive a
//! real `xds-agent serve --kubeconfig` from another program (the agent's `ads_load --source
//! kubernetes`).
//!
//! It starts the fake on a free 127.0.0.1 port and applies one Service (`--namespace`/`--service`,
//! port `http` 80 → 8080) and `--slices` EndpointSlices of `--endpoints` ready endpoints each (one
//! pod per endpoint, `targetRef` `<service>-<slice>-<endpoint>`, address `10.<slice / 250>.<slice %
//! 250>.<endpoint + 1>`, never dialled; at most 50,000 slices of 250). Then it prints one JSON line —
//! `{"kubeconfig": PATH, "url": URL, "slices": N, "endpoints": TOTAL, "load_ms": MS}` — and reads
//! commands on stdin, one per line, answering each with one JSON line on stdout:
//!
//! - `change N`: edit N moves one endpoint to a new address — slice `N % slices`, its first endpoint,
//!   to `10.200.<N / 250 % 250>.<N % 250 + 1>` (the pod keeps its name) — and applies that one slice;
//!   answers `{"slice": NAME, "resource_version": RV, "apply_ms": MS}` once `apply` returned (the
//!   object stored and every watcher told).
//!
//! A command it does not know is answered with `{"error": ...}`. It exits when stdin closes (so it
//! ends with the program that started it) or after `--timeout-seconds` (default 300), whichever
//! comes first.
//!
//! `cargo run --release -p e2e --example kube_fake -- --slices 100 --endpoints 100`

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use e2e::FakeApiServer;
use serde_json::{Value, json};

struct Args {
    namespace: String,
    service: String,
    slices: usize,
    endpoints: usize,
    timeout: Duration,
}

fn main() {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("kube_fake: {e}");
            std::process::exit(2);
        }
    };
    let timeout = args.timeout;
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!(
            "kube_fake: stopping after --timeout-seconds {}",
            timeout.as_secs()
        );
        std::process::exit(3);
    });
    let server = FakeApiServer::start();
    let mut slices = Slices::new(&args);
    let started = Instant::now();
    server.apply(service(&args.namespace, &args.service));
    for index in 0..args.slices {
        server.apply(slices.object(index));
    }
    let ready = json!({
        "kubeconfig": server.kubeconfig(),
        "url": server.url(),
        "slices": args.slices,
        "endpoints": args.slices * args.endpoints,
        "load_ms": millis(started.elapsed()),
    });
    if reply(&ready).is_err() {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match parse_change(&line) {
            Ok(edit) => {
                let index = edit % args.slices;
                slices.move_first_endpoint(index, edit);
                let started = Instant::now();
                let resource_version = server.apply(slices.object(index));
                json!({
                    "slice": slices.name(index),
                    "resource_version": resource_version,
                    "apply_ms": millis(started.elapsed()),
                })
            }
            Err(e) => json!({ "error": e }),
        };
        if reply(&answer).is_err() {
            break;
        }
    }
}

/// The EndpointSlices as last applied: one address per endpoint.
struct Slices {
    namespace: String,
    service: String,
    addresses: Vec<Vec<String>>,
}

impl Slices {
    fn new(args: &Args) -> Slices {
        let addresses = (0..args.slices)
            .map(|slice| {
                (0..args.endpoints)
                    .map(|endpoint| format!("10.{}.{}.{}", slice / 250, slice % 250, endpoint + 1))
                    .collect()
            })
            .collect();
        Slices {
            namespace: args.namespace.clone(),
            service: args.service.clone(),
            addresses,
        }
    }

    fn name(&self, index: usize) -> String {
        format!("{}-{index:03}", self.service)
    }

    /// Edit `edit`: the slice's first endpoint gets an address no generated endpoint has (10.200/16).
    fn move_first_endpoint(&mut self, index: usize, edit: usize) {
        if let Some(first) = self.addresses[index].first_mut() {
            *first = format!("10.200.{}.{}", edit / 250 % 250, edit % 250 + 1);
        }
    }

    fn object(&self, index: usize) -> Value {
        let endpoints: Vec<Value> = self.addresses[index]
            .iter()
            .enumerate()
            .map(|(endpoint, address)| {
                json!({
                    "addresses": [address],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": self.namespace,
                        "name": format!("{}-{index}-{endpoint}", self.service),
                    },
                })
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": self.name(index),
                "namespace": self.namespace,
                "labels": {"kubernetes.io/service-name": self.service},
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        })
    }
}

fn service(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
}

/// `change N` → N.
fn parse_change(line: &str) -> Result<usize, String> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["change", edit] => edit
            .parse()
            .map_err(|e| format!("change {edit:?}: not an edit number: {e}")),
        _ => Err(format!("unknown command {line:?} (expected `change N`)")),
    }
}

fn reply(value: &Value) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{value}")?;
    stdout.flush()
}

fn parse_args(raw: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        namespace: "shop".to_owned(),
        service: "web".to_owned(),
        slices: 100,
        endpoints: 100,
        timeout: Duration::from_secs(300),
    };
    let mut raw = raw.into_iter();
    while let Some(name) = raw.next() {
        let value = raw.next().ok_or(format!("{name} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{name} {value:?}: {e}"))
        };
        match name.as_str() {
            "--namespace" => args.namespace = value.clone(),
            "--service" => args.service = value.clone(),
            "--slices" => args.slices = within(&name, number()?, 50_000)?,
            "--endpoints" => args.endpoints = within(&name, number()?, 250)?,
            "--timeout-seconds" => args.timeout = Duration::from_secs(number()?),
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    Ok(args)
}

/// `value` when it is 1..=`max` (the generated addresses have room for that many).
fn within(name: &str, value: u64, max: usize) -> Result<usize, String> {
    usize::try_from(value)
        .ok()
        .filter(|v| (1..=max).contains(v))
        .ok_or(format!("{name} {value}: expected 1 to {max}"))
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
