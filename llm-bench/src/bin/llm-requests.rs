//! `llm-requests`: writes the first `--limit` requests of a Mooncake-format trace as the chat
//! requests the simulator models, one JSON object per line (`index`, `arrival_ms`,
//! `conversation`, `parent`, `user`, `prompt_tokens`, `body`), for `bench/llm_replay.py` to send
//! through real Envoys. The same [`llm_bench::workload`] code renders them, so the replay and the
//! simulator see the same prompts.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use llm_bench::features::MODEL;
use llm_bench::workload::WorkloadRequest;
use llm_bench::{trace, workload};

const USAGE: &str =
    "usage: llm-requests --trace FILE --out FILE [--limit N] [--conversations-per-user 4]";

fn main_result() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut trace_path, mut out, mut limit, mut per_user) = (None, None, usize::MAX, 4u32);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_| format!("{flag}: {value:?} is not a number");
        match flag.as_str() {
            "--trace" => trace_path = Some(PathBuf::from(&value)),
            "--out" => out = Some(PathBuf::from(&value)),
            "--limit" => limit = value.parse().map_err(bad)?,
            "--conversations-per-user" => per_user = value.parse().map_err(bad)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let trace_path = trace_path.ok_or("--trace is required")?;
    let out = out.ok_or("--out is required")?;
    let mut requests = trace::load(&trace_path)?;
    requests.truncate(limit);
    let workload = workload::build(&requests, per_user);
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut writer = BufWriter::new(file);
    for (index, request) in workload.requests.iter().enumerate() {
        let messages = request.messages();
        let prompt_tokens =
            demo_backend::prefix_cache::tokens(&WorkloadRequest::prompt_text(&messages)).count();
        let line = serde_json::json!({
            "index": index,
            "arrival_ms": request.arrival_ms,
            "conversation": request.conversation,
            "parent": request.parent,
            "user": request.user_id(),
            "prompt_tokens": prompt_tokens,
            "body": request.chat_body(MODEL, &messages),
        });
        writeln!(writer, "{line}").map_err(|e| format!("{}: {e}", out.display()))?;
    }
    writer
        .flush()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "llm-requests: {} requests ({} conversations) in {}",
        workload.requests.len(),
        workload.conversations,
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match main_result() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("llm-requests: {message}\n{USAGE}");
            ExitCode::from(64)
        }
    }
}
