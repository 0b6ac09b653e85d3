//! The HTTP/1.1 connection loop: parse a request head, drain its body (keeping its length and
//! FNV-1a digest for the answer) or, for the `--llm` paths, read it, answer, repeat while kept alive.
//! In `--llm` mode the OpenAI paths and `/metrics` are answered by [`crate::llm`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::llm::LlmBackend;

const MAX_HEAD_BYTES: usize = 64 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const AFFINITY_HEADER: &str = "x-affinity-key";

/// A parsed request head.
pub(crate) struct RequestHead {
    pub(crate) path: String,
    version_1_0: bool,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let connection = self
            .values("connection")
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        connection.contains("close") || (self.version_1_0 && !connection.contains("keep-alive"))
    }
}

/// The largest request body the LLM mode reads.
const MAX_LLM_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// What was read of a request's body: drained (length and digest) or, for the LLM paths, kept.
enum BodyRead {
    Drained(BodySeen),
    Kept(Vec<u8>),
}

/// Serves one client connection until it closes, errs or idles out; `llm` answers the OpenAI paths.
pub fn serve_connection(stream: TcpStream, name: &str, llm: Option<&LlmBackend>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let llm_request = |head: &RequestHead| llm.filter(|_| LlmBackend::handles(&head.path));
        let request = match read_head(&mut reader) {
            Ok(Some(head)) => {
                if llm_request(&head).is_some() {
                    read_body(&mut reader, &head, MAX_LLM_BODY_BYTES)
                        .map(|body| (head, BodyRead::Kept(body)))
                } else {
                    drain_body(&mut reader, &head).map(|seen| (head, BodyRead::Drained(seen)))
                }
            }
            Ok(None) => return,
            Err(message) => Err(message),
        };
        let (head, body_read) = match request {
            Ok(request) => request,
            Err(message) => {
                let _ = write_response(
                    &mut writer,
                    400,
                    "text/plain",
                    &format!("{message}\n"),
                    true,
                    name,
                );
                return;
            }
        };
        let close = head.wants_close();
        let body_seen = match body_read {
            BodyRead::Kept(body) => {
                let answered = llm_request(&head)
                    .is_some_and(|llm| llm.respond(&mut writer, &head.path, &body, close).is_ok());
                if !answered || close {
                    return;
                }
                continue;
            }
            BodyRead::Drained(seen) => seen,
        };
        let (content_type, body) = if head.path == "/healthz" {
            ("text/plain", "ok\n".to_string())
        } else {
            (
                "application/json",
                response_json(name, &peer, &head, &body_seen),
            )
        };
        if write_response(&mut writer, 200, content_type, &body, close, name).is_err() || close {
            return;
        }
    }
}

fn response_json(name: &str, peer: &str, head: &RequestHead, body: &BodySeen) -> String {
    let keys: Vec<String> = head.values(AFFINITY_HEADER).map(json_string).collect();
    let first = keys.first().cloned().unwrap_or_else(|| "null".to_string());
    format!(
        "{{\"backend\":{},\"affinityKey\":{},\"affinityKeys\":[{}],\"path\":{},\"peer\":{},\"bodyBytes\":{},\"bodyFnv1a64\":\"{:016x}\"}}\n",
        json_string(name),
        first,
        keys.join(","),
        json_string(&head.path),
        json_string(peer),
        body.bytes,
        body.fnv1a64
    )
}

/// What arrived of a request body: its length and FNV-1a (64-bit) digest, so a client can check
/// the body reached the backend unchanged.
#[derive(Debug, PartialEq, Eq)]
struct BodySeen {
    bytes: u64,
    fnv1a64: u64,
}

impl Default for BodySeen {
    fn default() -> Self {
        BodySeen {
            bytes: 0,
            fnv1a64: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Write for BodySeen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &byte in buf {
            self.fnv1a64 = (self.fnv1a64 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads one request head; `Ok(None)` when the peer closed between requests.
fn read_head(reader: &mut impl BufRead) -> Result<Option<RequestHead>, String> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let read = reader
            .by_ref()
            .take((MAX_HEAD_BYTES - total + 1) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("read failed: {e}"))?;
        if read == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err("connection closed mid-request".into())
            };
        }
        total += read;
        if total > MAX_HEAD_BYTES {
            return Err("request head too large".into());
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // tolerate stray CRLF between requests
            }
            break;
        }
        lines.push(text);
    }
    let request_line = &lines[0];
    let mut parts = request_line.split(' ');
    let (Some(_method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Some(RequestHead {
        path: path.to_string(),
        version_1_0: version == "HTTP/1.0",
        headers,
    }))
}

/// Reads the request body (Content-Length or chunked), keeping only its length and digest.
fn drain_body(reader: &mut impl BufRead, head: &RequestHead) -> Result<BodySeen, String> {
    let mut seen = BodySeen::default();
    copy_body(reader, head, &mut seen, u64::MAX)?;
    Ok(seen)
}

/// Reads the request body (Content-Length or chunked), at most `limit` bytes.
fn read_body(reader: &mut impl BufRead, head: &RequestHead, limit: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    copy_body(reader, head, &mut body, limit)?;
    Ok(body)
}

/// Copies the request body to `out`; more than `limit` bytes is an error.
fn copy_body(
    reader: &mut impl BufRead,
    head: &RequestHead,
    out: &mut impl Write,
    limit: u64,
) -> Result<(), String> {
    let mut copied_total = 0u64;
    let chunked = head
        .values("transfer-encoding")
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size_line = String::new();
            reader
                .read_line(&mut size_line)
                .map_err(|e| format!("read failed: {e}"))?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            // chunk data plus its CRLF; the last chunk is followed by trailers and an empty line
            if size == 0 {
                loop {
                    let mut trailer = String::new();
                    let read = reader
                        .read_line(&mut trailer)
                        .map_err(|e| format!("read failed: {e}"))?;
                    if read == 0 || trailer.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            copied_total = copied_total.saturating_add(size);
            if copied_total > limit {
                return Err(format!("request body larger than {limit} bytes"));
            }
            copy_into(reader, size, out)?;
            copy_into(reader, 2, &mut std::io::sink())?;
        }
    }
    let length = match head.values("content-length").next() {
        Some(value) => value
            .parse::<u64>()
            .map_err(|_| format!("bad content-length {value:?}"))?,
        None => 0,
    };
    if length > limit {
        return Err(format!("request body larger than {limit} bytes"));
    }
    copy_into(reader, length, out)
}

fn copy_into(reader: &mut impl BufRead, bytes: u64, sink: &mut impl Write) -> Result<(), String> {
    let copied = std::io::copy(&mut reader.by_ref().take(bytes), sink)
        .map_err(|e| format!("read failed: {e}"))?;
    if copied == bytes {
        Ok(())
    } else {
        Err("connection closed mid-body".into())
    }
}

fn write_response(
    writer: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &str,
    close: bool,
    name: &str,
) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let connection = if close { "close" } else { "keep-alive" };
    // One buffer, one write: several small writes on a kept-alive connection meet Nagle's algorithm and the
    // peer's delayed ACK, which stalled every reused-connection response by ~40 ms.
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-backend: {name}\r\nconnection: {connection}\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(response.as_bytes())?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn head(raw: &str) -> RequestHead {
        read_head(&mut Cursor::new(raw.as_bytes().to_vec()))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn echoes_every_affinity_key_copy() {
        let h = head("GET /a HTTP/1.1\r\nX-Affinity-Key: k1\r\nx-affinity-key: k\"2\r\n\r\n");
        assert_eq!(
            response_json("b1", "127.0.0.1", &h, &BodySeen::default()),
            "{\"backend\":\"b1\",\"affinityKey\":\"k1\",\"affinityKeys\":[\"k1\",\"k\\\"2\"],\"path\":\"/a\",\"peer\":\"127.0.0.1\",\"bodyBytes\":0,\"bodyFnv1a64\":\"cbf29ce484222325\"}\n"
        );
    }

    #[test]
    fn no_key_is_null() {
        let h = head("GET / HTTP/1.1\r\n\r\n");
        assert!(
            response_json("b1", "127.0.0.1", &h, &BodySeen::default())
                .contains("\"affinityKey\":null,\"affinityKeys\":[]")
        );
    }

    #[test]
    fn malformed_request_line_is_an_error() {
        assert!(read_head(&mut Cursor::new(b"GARBAGE\r\n\r\n".to_vec())).is_err());
    }

    #[test]
    fn oversized_head_is_an_error() {
        let raw = format!(
            "GET / HTTP/1.1\r\nx: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(read_head(&mut Cursor::new(raw.into_bytes())).is_err());
    }

    #[test]
    fn drains_chunked_body_and_keeps_next_request() {
        let raw = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
        let mut reader = Cursor::new(raw.as_bytes().to_vec());
        let first = read_head(&mut reader).unwrap().unwrap();
        let seen = drain_body(&mut reader, &first).unwrap();
        assert_eq!(read_head(&mut reader).unwrap().unwrap().path, "/next");
        // FNV-1a 64 of "abc" (a published test vector).
        assert_eq!(
            seen,
            BodySeen {
                bytes: 3,
                fnv1a64: 0xe71f_a219_0541_574b
            }
        );
    }

    #[test]
    fn connection_close_and_http10() {
        assert!(head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").wants_close());
        assert!(head("GET / HTTP/1.0\r\n\r\n").wants_close());
        assert!(!head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wants_close());
        assert!(!head("GET / HTTP/1.1\r\n\r\n").wants_close());
    }

    /// Sends `raw` to `serve_connection` over a real loopback connection; returns all it answered.
    fn exchange(raw: &str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve_connection(stream, "b1", None);
        });
        let mut client = TcpStream::connect(address).unwrap();
        client.write_all(raw.as_bytes()).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        server.join().unwrap();
        answer
    }

    #[test]
    fn bad_head_or_body_is_answered_400_and_closed() {
        for raw in [
            "GARBAGE\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let answer = exchange(raw);
            assert!(answer.starts_with("HTTP/1.1 400 "), "{raw:?}: {answer}");
            assert!(answer.contains("connection: close"), "{raw:?}: {answer}");
        }
        let answer = exchange("GET /a HTTP/1.1\r\nconnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }
}
