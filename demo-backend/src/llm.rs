//! `--llm` mode: an OpenAI-compatible server (`POST /v1/chat/completions`, `POST /v1/completions`,
//! `GET /metrics`) that simulates vLLM's automatic prefix caching.
//!
//! Each request's prompt text ([`demo_backend::prompt`]) is tokenized and cut into blocks, and looked
//! up in this backend's [`PrefixCache`]; the answer reports `usage.prompt_tokens`,
//! `usage.completion_tokens` and `usage.prompt_tokens_details.cached_tokens` (OpenAI's field) and
//! names the backend in `x-backend`. The completion is `max_tokens` (or `max_completion_tokens`,
//! default 16, at most 4096) generated words. `"stream": true` is answered as server-sent events,
//! one HTTP chunk per event, flushed one by one, ending with `data: [DONE]`; the last content event
//! carries the usage. With `--ms-per-uncached-token`, the first byte waits that long per uncached
//! prompt token (a stand-in for prefill time, to show time to first token); with
//! `--ms-per-output-token`, each completion token takes that long too (before the JSON answer, or
//! between events when streaming), so replays keep realistic numbers of requests in flight. `/metrics` has
//! Prometheus counters named like vLLM's: `vllm:prefix_cache_queries` and `vllm:prefix_cache_hits`
//! (in tokens), `vllm:prompt_tokens`, `vllm:generation_tokens` and `vllm:request_success`.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use demo_backend::prefix_cache::{PrefixCache, block_hashes, tokens};
use demo_backend::prompt::request_prompt;
use serde_json::{Value, json};

const DEFAULT_COMPLETION_TOKENS: u64 = 16;
const MAX_COMPLETION_TOKENS: u64 = 4096;

/// The settings of `--llm` mode.
pub struct LlmSettings {
    /// Tokens per cache block (`--block-tokens`).
    pub block_tokens: usize,
    /// Cache capacity in blocks (`--cache-blocks`).
    pub cache_blocks: usize,
    /// Delay per uncached prompt token before the first byte, in milliseconds.
    pub ms_per_uncached_token: f64,
    /// Delay per completion token, in milliseconds.
    pub ms_per_output_token: f64,
}

/// One simulated vLLM server: its cache and its counters.
pub struct LlmBackend {
    name: String,
    block_tokens: usize,
    ms_per_uncached_token: f64,
    ms_per_output_token: f64,
    cache: Mutex<PrefixCache>,
    queries: AtomicU64,
    hits: AtomicU64,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
    requests: AtomicU64,
}

/// What one request cost.
struct Usage {
    prompt: u64,
    cached: u64,
    completion: u64,
}

impl LlmBackend {
    /// A backend named `name` with an empty cache.
    pub fn new(name: &str, settings: &LlmSettings) -> Self {
        Self {
            name: name.to_owned(),
            block_tokens: settings.block_tokens.max(1),
            ms_per_uncached_token: settings.ms_per_uncached_token.max(0.0),
            ms_per_output_token: settings.ms_per_output_token.max(0.0),
            cache: Mutex::new(PrefixCache::new(settings.cache_blocks)),
            queries: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Whether `path` is one this mode answers.
    pub fn handles(path: &str) -> bool {
        matches!(
            path.split('?').next().unwrap_or(""),
            "/v1/chat/completions" | "/v1/completions" | "/metrics"
        )
    }

    /// Answers one request for a path [`handles`](Self::handles) accepts.
    pub fn respond(
        &self,
        writer: &mut impl Write,
        path: &str,
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        let path = path.split('?').next().unwrap_or("");
        if path == "/metrics" {
            return self.write_plain(
                writer,
                200,
                "text/plain; version=0.0.4",
                &self.metrics(),
                close,
            );
        }
        let request: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(error) => {
                return self.write_error(writer, &format!("body is not JSON: {error}"), close);
            }
        };
        let prompt = match request_prompt(path, &request) {
            Ok(prompt) => prompt,
            Err(message) => return self.write_error(writer, &message, close),
        };
        let usage = self.serve_prompt(&prompt, completion_tokens(&request));
        #[allow(clippy::cast_precision_loss)]
        sleep_ms((usage.prompt - usage.cached) as f64 * self.ms_per_uncached_token);
        let chat = path == "/v1/chat/completions";
        let model = request.get("model").cloned().unwrap_or(Value::Null);
        let id = format!(
            "cmpl-{}-{}",
            self.name,
            self.requests.load(Ordering::Relaxed)
        );
        if request.get("stream").and_then(Value::as_bool) == Some(true) {
            self.write_stream(writer, chat, &id, &model, &usage, close)
        } else {
            #[allow(clippy::cast_precision_loss)]
            sleep_ms(usage.completion as f64 * self.ms_per_output_token);
            let text = completion_text(0, usage.completion);
            let choice = if chat {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"})
            } else {
                json!({"index": 0, "text": text, "finish_reason": "length"})
            };
            let object = if chat {
                "chat.completion"
            } else {
                "text_completion"
            };
            let answer = json!({"id": id, "object": object, "created": 0, "model": model,
                "choices": [choice], "usage": usage_json(&usage)});
            self.write_plain(
                writer,
                200,
                "application/json",
                &format!("{answer}\n"),
                close,
            )
        }
    }

    /// Looks the prompt up in the cache and counts it.
    fn serve_prompt(&self, prompt: &str, completion: u64) -> Usage {
        let hashes = block_hashes(tokens(prompt), self.block_tokens);
        let cached_blocks = match self.cache.lock() {
            Ok(mut cache) => cache.serve(&hashes),
            Err(poisoned) => poisoned.into_inner().serve(&hashes),
        };
        let usage = Usage {
            prompt: tokens(prompt).count() as u64,
            cached: (cached_blocks * self.block_tokens) as u64,
            completion,
        };
        self.queries.fetch_add(usage.prompt, Ordering::Relaxed);
        self.hits.fetch_add(usage.cached, Ordering::Relaxed);
        self.prompt_tokens
            .fetch_add(usage.prompt, Ordering::Relaxed);
        self.generation_tokens
            .fetch_add(usage.completion, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        usage
    }

    fn metrics(&self) -> String {
        let label = format!("{{backend=\"{}\"}}", self.name);
        let mut out = String::new();
        for (name, help, counter) in [
            (
                "vllm:prefix_cache_queries",
                "Prefix cache queries, in tokens.",
                &self.queries,
            ),
            (
                "vllm:prefix_cache_hits",
                "Prefix cache hits, in tokens.",
                &self.hits,
            ),
            (
                "vllm:prompt_tokens",
                "Prompt tokens processed.",
                &self.prompt_tokens,
            ),
            (
                "vllm:generation_tokens",
                "Generation tokens produced.",
                &self.generation_tokens,
            ),
            ("vllm:request_success", "Requests answered.", &self.requests),
        ] {
            out.push_str(&format!(
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{label} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        out
    }

    fn write_stream(
        &self,
        writer: &mut impl Write,
        chat: bool,
        id: &str,
        model: &Value,
        usage: &Usage,
        close: bool,
    ) -> io::Result<()> {
        let connection = if close { "close" } else { "keep-alive" };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-backend: {}\r\nconnection: {connection}\r\n\r\n",
            self.name
        )?;
        writer.flush()?;
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        for index in 0..usage.completion.max(1) {
            sleep_ms(self.ms_per_output_token);
            let last = index + 1 >= usage.completion.max(1);
            let text = if usage.completion == 0 {
                String::new()
            } else {
                completion_text(index, 1) + " "
            };
            let mut choice = if chat {
                json!({"index": 0, "delta": {"content": text}, "finish_reason": Value::Null})
            } else {
                json!({"index": 0, "text": text, "finish_reason": Value::Null})
            };
            let mut event = json!({"id": id, "object": object, "created": 0, "model": model});
            if last {
                choice["finish_reason"] = json!("length");
                event["usage"] = usage_json(usage);
            }
            event["choices"] = json!([choice]);
            write_chunk(writer, &format!("data: {event}\n\n"))?;
        }
        write_chunk(writer, "data: [DONE]\n\n")?;
        writer.write_all(b"0\r\n\r\n")?;
        writer.flush()
    }

    fn write_error(&self, writer: &mut impl Write, message: &str, close: bool) -> io::Result<()> {
        let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
        self.write_plain(writer, 400, "application/json", &format!("{body}\n"), close)
    }

    fn write_plain(
        &self,
        writer: &mut impl Write,
        status: u16,
        content_type: &str,
        body: &str,
        close: bool,
    ) -> io::Result<()> {
        let reason = if status == 200 { "OK" } else { "Bad Request" };
        let connection = if close { "close" } else { "keep-alive" };
        // One write per response (see http::write_response: small writes meet Nagle's algorithm).
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-backend: {}\r\nconnection: {connection}\r\n\r\n{body}",
            body.len(),
            self.name
        );
        writer.write_all(response.as_bytes())?;
        writer.flush()
    }
}

fn sleep_ms(ms: f64) {
    if ms > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
    }
}

fn write_chunk(writer: &mut impl Write, data: &str) -> io::Result<()> {
    writer.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())?;
    writer.flush()
}

fn completion_tokens(request: &Value) -> u64 {
    ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|field| request.get(field).and_then(Value::as_u64))
        .unwrap_or(DEFAULT_COMPLETION_TOKENS)
        .min(MAX_COMPLETION_TOKENS)
}

/// `count` generated words starting at word `first`.
fn completion_text(first: u64, count: u64) -> String {
    (first..first + count)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn usage_json(usage: &Usage) -> Value {
    json!({"prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached}})
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    use super::*;

    fn post(address: std::net::SocketAddr, path: &str, body: &str) -> (String, String) {
        let mut client = TcpStream::connect(address).unwrap();
        write!(
            client,
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    }

    fn words(prefix: &str, count: usize) -> String {
        (0..count)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn over_a_real_socket_a_shared_prefix_is_reported_cached() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let backend = Arc::new(LlmBackend::new(
            "b1",
            &LlmSettings {
                block_tokens: 4,
                cache_blocks: 1000,
                ms_per_uncached_token: 0.0,
                ms_per_output_token: 0.0,
            },
        ));
        let server = Arc::clone(&backend);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                crate::http::serve_connection(stream.unwrap(), "b1", Some(&server));
            }
        });
        let system = words("s", 15); // "system" + 15 words = 16 tokens = 4 blocks
        let first = json!({"model": "m", "messages": [{"role": "system", "content": system},
            {"role": "user", "content": words("a", 20)}], "max_tokens": 3, "user": "u1"});
        let (head, body) = post(address, "/v1/chat/completions", &first.to_string());
        assert!(
            head.starts_with("HTTP/1.1 200") && head.contains("x-backend: b1"),
            "{head}"
        );
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["usage"]["prompt_tokens"], 37);
        assert_eq!(answer["usage"]["completion_tokens"], 3);
        assert_eq!(answer["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(answer["choices"][0]["message"]["content"], "w0 w1 w2");

        let second = json!({"model": "m", "messages": [{"role": "system", "content": system},
            {"role": "user", "content": words("b", 20)}], "stream": true, "max_tokens": 2});
        let (head, body) = post(address, "/v1/chat/completions", &second.to_string());
        assert!(
            head.contains("text/event-stream") && head.contains("chunked"),
            "{head}"
        );
        // One HTTP chunk per event: `<hex size>\r\ndata: …\n\n\r\n`, then the last chunk.
        let mut chunks = Vec::new();
        let mut rest = body.as_str();
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size, 16).unwrap();
            if size == 0 {
                break;
            }
            chunks.push(&after[..size]);
            rest = &after[size + 2..];
        }
        assert_eq!(chunks.len(), 3, "{body}");
        assert!(
            chunks
                .iter()
                .all(|c| c.starts_with("data: ") && c.ends_with("\n\n")),
            "{chunks:?}"
        );
        let events: Vec<&str> = chunks.iter().map(|c| c.trim_end()).collect();
        assert_eq!(events[2], "data: [DONE]");
        let last: Value = serde_json::from_str(&events[1]["data: ".len()..]).unwrap();
        // The system message (4 blocks) is shared; the user message is not.
        assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 16);

        let (_, body) = post(address, "/v1/completions", r#"{"prompt": 7}"#);
        assert!(body.contains("invalid_request_error"), "{body}");

        let mut client = TcpStream::connect(address).unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nconnection: close\r\n\r\n")
            .unwrap();
        let metrics: Vec<String> = BufReader::new(client).lines().map(Result::unwrap).collect();
        assert!(
            metrics.contains(&"vllm:prefix_cache_queries_total{backend=\"b1\"} 74".to_owned()),
            "{metrics:?}"
        );
        assert!(
            metrics.contains(&"vllm:prefix_cache_hits_total{backend=\"b1\"} 16".to_owned()),
            "{metrics:?}"
        );
        assert!(
            metrics.contains(&"vllm:request_success_total{backend=\"b1\"} 2".to_owned()),
            "{metrics:?}"
        );
    }
}
