//! `llm-sim`: the routing simulator (no Envoy, no sockets) over a Mooncake-format trace; see
//! `llm_bench::sim` for the model. Prints Markdown tables and writes one JSON record per
//! strategy and setting.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use llm_bench::features::compute;
use llm_bench::ours::{CONFIGS, OurKey};
use llm_bench::report::{Record, tables};
use llm_bench::sim::{HASH_BALANCE_FACTOR, Settings, Strategy, run};
use llm_bench::{trace, workload};

const USAGE: &str = "usage: llm-sim --trace FILE [--backends 8,16,64] [--replicas 1,2,4,8] \
[--limit N] [--block-tokens 16] [--cache-blocks 31250] [--prefill-ms-per-token 0.1] \
[--decode-ms-per-token 25] [--conversations-per-user 4] [--json FILE]";

struct Args {
    trace: PathBuf,
    backends: Vec<usize>,
    replicas: Vec<usize>,
    limit: Option<usize>,
    block_tokens: usize,
    cache_blocks: usize,
    prefill_ms_per_token: f64,
    decode_ms_per_token: f64,
    conversations_per_user: u32,
    json: Option<PathBuf>,
}

fn list(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    value
        .split(',')
        .map(|part| {
            part.trim()
                .parse()
                .map_err(|_| format!("{flag}: {part:?} is not a number"))
        })
        .collect()
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a number"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        trace: PathBuf::new(),
        backends: vec![8, 16, 64],
        replicas: vec![1, 2, 4, 8],
        limit: None,
        block_tokens: 16,
        cache_blocks: 31_250,
        prefill_ms_per_token: 0.1,
        decode_ms_per_token: 25.0,
        conversations_per_user: 4,
        json: None,
    };
    let mut trace = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--trace" => trace = Some(PathBuf::from(value)),
            "--backends" => parsed.backends = list(&flag, &value)?,
            "--replicas" => parsed.replicas = list(&flag, &value)?,
            "--limit" => parsed.limit = Some(number(&flag, &value)?),
            "--block-tokens" => parsed.block_tokens = number(&flag, &value)?,
            "--cache-blocks" => parsed.cache_blocks = number(&flag, &value)?,
            "--prefill-ms-per-token" => parsed.prefill_ms_per_token = number(&flag, &value)?,
            "--decode-ms-per-token" => parsed.decode_ms_per_token = number(&flag, &value)?,
            "--conversations-per-user" => parsed.conversations_per_user = number(&flag, &value)?,
            "--json" => parsed.json = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    parsed.trace = trace.ok_or("--trace is required")?;
    Ok(parsed)
}

fn strategies() -> Vec<Strategy> {
    let mut all = vec![Strategy::RoundRobin, Strategy::LeastRequest];
    for (key, (name, _)) in CONFIGS.iter().enumerate() {
        all.push(Strategy::Ours {
            name: format!("ours-{name}"),
            key,
            bounded: None,
        });
        all.push(Strategy::Ours {
            name: format!("ours-{name}-bounded"),
            key,
            bounded: Some(HASH_BALANCE_FACTOR),
        });
    }
    all.extend([
        Strategy::VllmPsPrefix,
        Strategy::GaiePrefix,
        Strategy::KubeAiPrefixHash,
        Strategy::Oracle,
    ]);
    all
}

fn main_result() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let started = Instant::now();
    let mut requests = trace::load(&args.trace)?;
    if let Some(limit) = args.limit {
        requests.truncate(limit);
    }
    let workload = workload::build(&requests, args.conversations_per_user);
    let keys: Vec<OurKey> = CONFIGS
        .iter()
        .map(|(_, config)| OurKey::new(config))
        .collect::<Result<_, _>>()?;
    let features = compute(&workload, args.block_tokens, &keys);
    eprintln!(
        "llm-sim: {} requests, {} conversations, {} users from {} ({:.1} s to prepare)",
        workload.requests.len(),
        workload.conversations,
        workload.users,
        args.trace.display(),
        started.elapsed().as_secs_f64()
    );
    let mut records = Vec::new();
    for &backends in &args.backends {
        for strategy in strategies() {
            for &replicas in &args.replicas {
                let settings = Settings {
                    backends,
                    replicas,
                    cache_blocks: args.cache_blocks,
                    prefill_ms_per_token: args.prefill_ms_per_token,
                    decode_ms_per_token: args.decode_ms_per_token,
                };
                let outcome = run(&features, &strategy, settings)?;
                records.push(Record {
                    kind: "sim",
                    strategy: strategy.name(),
                    backends,
                    replicas,
                    outcome,
                });
            }
        }
        eprintln!(
            "llm-sim: {backends} backends done ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    print!("{}", tables(&records));
    if let Some(path) = &args.json {
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for record in &records {
            writeln!(file, "{}", record.json()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        eprintln!("llm-sim: {} records in {}", records.len(), path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match main_result() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("llm-sim: {message}\n{USAGE}");
            ExitCode::from(64)
        }
    }
}
