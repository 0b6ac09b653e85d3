//! A small HTTP/1.1 backend for demos and tests.
//!
//! Every path answers `200` with the header `x-backend: <name>` and a JSON body naming the backend, the
//! affinity key it received (the `x-affinity-key` header, every copy), the request path, the peer IP and the length
//! and FNV-1a 64 digest of the request body (`bodyBytes`, `bodyFnv1a64`), so a person or
//! a test can see where a request landed and what key steered it. `/healthz` answers `ok`.
//! With `--llm`, `POST /v1/chat/completions`, `POST /v1/completions` and `GET /metrics` are an
//! OpenAI-compatible server simulating vLLM's prefix cache (see the `llm` module); other paths answer as above.
//! std only (plus serde_json for the LLM mode), one thread per connection, keep-alive, bounded header size.

mod http;
mod llm;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use demo_backend::prefix_cache::DEFAULT_BLOCK_TOKENS;

const USAGE: &str = "usage: demo-backend --listen 127.0.0.1:8081 --name NAME \
                     [--llm [--block-tokens 16] [--cache-blocks 31250] [--ms-per-uncached-token 0] [--ms-per-output-token 0]]";

/// vLLM's block size is 16 tokens; 31,250 blocks (500k tokens) is the Gateway API Inference
/// Extension's sizing of one Llama-3-8B pod on an 80 GB H100 (its `lruCapacityPerServer` default).
const DEFAULT_CACHE_BLOCKS: usize = 31_250;

struct Args {
    listen: String,
    name: String,
    llm: Option<llm::LlmSettings>,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid number\n{USAGE}"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut name, mut llm) = (None, None, false);
    let mut settings = llm::LlmSettings {
        block_tokens: DEFAULT_BLOCK_TOKENS,
        cache_blocks: DEFAULT_CACHE_BLOCKS,
        ms_per_uncached_token: 0.0,
        ms_per_output_token: 0.0,
    };
    while let Some(flag) = args.next() {
        if flag == "--llm" {
            llm = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--name" => name = Some(value),
            "--block-tokens" => settings.block_tokens = number(&flag, &value)?,
            "--cache-blocks" => settings.cache_blocks = number(&flag, &value)?,
            "--ms-per-uncached-token" => settings.ms_per_uncached_token = number(&flag, &value)?,
            "--ms-per-output-token" => settings.ms_per_output_token = number(&flag, &value)?,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if settings.block_tokens == 0 || settings.cache_blocks == 0 {
        return Err(format!(
            "--block-tokens and --cache-blocks must be positive\n{USAGE}"
        ));
    }
    Ok(Args {
        listen: listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?,
        name: name.ok_or_else(|| format!("--name is required\n{USAGE}"))?,
        llm: llm.then_some(settings),
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(64);
        }
    };
    let listener = match TcpListener::bind(&args.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "demo-backend {}: cannot listen on {}: {error}",
                args.name, args.listen
            );
            return ExitCode::from(1);
        }
    };
    let mode = if args.llm.is_some() { " (llm)" } else { "" };
    eprintln!(
        "demo-backend {} listening on {}{mode}",
        args.name, args.listen
    );
    let name: Arc<str> = args.name.into();
    let llm = args
        .llm
        .map(|settings| Arc::new(llm::LlmBackend::new(&name, &settings)));
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let name = Arc::clone(&name);
                let llm = llm.clone();
                std::thread::spawn(move || http::serve_connection(stream, &name, llm.as_deref()));
            }
            Err(error) => eprintln!("demo-backend {name}: accept failed: {error}"),
        }
    }
    ExitCode::SUCCESS
}
