//! HTTP/1.1 on the server side, just what API clients use: requests on keep-alive connections, responses
//! with a length, and chunked streams for watches. Query strings are percent-decoded.

use std::io::{self, BufRead, Read, Write};

/// Longest request line or header line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// Largest request body read (and discarded: writes are refused).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A request as read from the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The request target as sent (path and query), for the request log.
    pub target: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Whether the client asked to close the connection after this request.
    pub close: bool,
}

impl Request {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let Some(line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let mut close = version == "HTTP/1.0";
    let mut length = 0u64;
    loop {
        let header =
            read_line(reader)?.ok_or_else(|| invalid("connection closed in headers".into()))?;
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid(format!("bad header line {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| invalid(format!("bad content-length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid(
                "request bodies with transfer-encoding are not read".into(),
            ));
        }
    }
    if length > MAX_BODY {
        return Err(invalid(format!(
            "request body of {length} bytes is too large"
        )));
    }
    io::copy(&mut reader.take(length), &mut io::sink())?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some(Request {
        method: method.to_string(),
        path: percent_decode(path),
        target: target.to_string(),
        query: parse_query(query),
        close,
    }))
}

fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let read = reader.take(MAX_LINE).read_until(b'\n', &mut bytes)?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') {
        return Err(invalid("line too long or cut short".into()));
    }
    let line = String::from_utf8(bytes).map_err(|_| invalid("line is not UTF-8".into()))?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// Query parameters of `a=b&c=d`, percent-decoded (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a whole JSON response.
pub fn write_json(stream: &mut impl Write, code: u16, body: &[u8], close: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: no-cache, private\r\n{}\r\n",
        reason_phrase(code),
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    stream.flush()
}

/// Starts a chunked JSON stream (a watch).
pub fn start_chunked(stream: &mut impl Write) -> io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ncache-control: no-cache, private\r\n\r\n",
    )?;
    stream.flush()
}

/// Sends one chunk (nothing for empty data, which would end the stream).
pub fn write_chunk(stream: &mut impl Write, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut message = format!("{:x}\r\n", data.len()).into_bytes();
    message.extend_from_slice(data);
    message.extend_from_slice(b"\r\n");
    stream.write_all(&message)?;
    stream.flush()
}

/// Ends a chunked stream.
pub fn end_chunked(stream: &mut impl Write) -> io::Result<()> {
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        410 => "Gone",
        _ => "Error",
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn requests_are_read_one_after_another_with_decoded_queries() {
        let wire = "GET /api/v1/services?labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=2 HTTP/1.1\r\nHost: x\r\n\r\n\
                    POST /api/v1/namespaces/a/services HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\n{}{}";
        let mut reader = BufReader::new(wire.as_bytes());
        let first = read_request(&mut reader).unwrap().unwrap();
        assert_eq!(first.method, "GET");
        assert_eq!(first.path, "/api/v1/services");
        assert_eq!(first.param("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(first.param("limit"), Some("2"));
        assert!(!first.close);
        let second = read_request(&mut reader).unwrap().unwrap();
        assert_eq!(second.method, "POST");
        assert!(second.close);
        assert!(read_request(&mut reader).unwrap().is_none());
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        for wire in [
            "GET\r\n\r\n",
            "GET / HTTP/1.1\r\nno-colon\r\n\r\n",
            "GET / HTTP/1.1\r\n",
        ] {
            assert!(
                read_request(&mut BufReader::new(wire.as_bytes())).is_err(),
                "{wire:?}"
            );
        }
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
    }

    #[test]
    fn chunks_carry_their_length() {
        let mut out = Vec::new();
        start_chunked(&mut out).unwrap();
        write_chunk(&mut out, b"{\"type\":\"ADDED\"}\n").unwrap();
        write_chunk(&mut out, b"").unwrap();
        end_chunked(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\r\n\r\n11\r\n{\"type\":\"ADDED\"}\n\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
