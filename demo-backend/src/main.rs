//! A small HTTP/1.1 backend for demos and tests.
//!
//! Every path answers `200` with the header `x-backend: <name>` and a JSON body naming the backend, the
//! affinity key it received (the `x-affinity-key` header, every copy), the request path, the peer IP and the length
//! and FNV-1a 64 digest of the request body (`bodyBytes`, `bodyFnv1a64`), so a person or
//! a test can see where a request landed and what key steered it. `/healthz` answers `ok`.
//! std only, one thread per connection, keep-alive, bounded header size.

mod http;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: demo-backend --listen 127.0.0.1:8081 --name NAME";

struct Args {
    listen: String,
    name: String,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut name) = (None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--name" => name = Some(value),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?,
        name: name.ok_or_else(|| format!("--name is required\n{USAGE}"))?,
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
    eprintln!("demo-backend {} listening on {}", args.name, args.listen);
    let name: Arc<str> = args.name.into();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let name = Arc::clone(&name);
                std::thread::spawn(move || http::serve_connection(stream, &name));
            }
            Err(error) => eprintln!("demo-backend {name}: accept failed: {error}"),
        }
    }
    ExitCode::SUCCESS
}
