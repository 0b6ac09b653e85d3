//! A small blocking HTTP/1.1 client for tests: one request per connection, bounded by timeouts.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A request to send to 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    source: Option<std::net::IpAddr>,
}

/// A response: status, headers in order (repeats kept), body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Every header line, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunked when needed.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `x-backend` header the demo backend sets: which backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.header("x-backend")
    }
}

/// `GET path`.
pub fn get(path: &str) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        source: None,
    }
}

impl Request {
    /// A request with another method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    /// Adds a header (repeat the call to send a name twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a header with a raw (possibly non-UTF-8) value.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .push((name.into(), String::from_utf8_lossy(value).into_owned()));
        self
    }

    /// Sets a body (sent with content-length).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Connects from this local source address (e.g. 127.0.0.2) so source-IP keys differ per client.
    pub fn from_source(mut self, ip: std::net::IpAddr) -> Self {
        self.source = Some(ip);
        self
    }

    /// Sends to 127.0.0.1:`port` and reads the whole response.
    pub fn send(&self, port: u16) -> std::io::Result<Response> {
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = match self.source {
            None => TcpStream::connect_timeout(&target, TIMEOUT)?,
            Some(ip) => connect_from(ip, target)?,
        };
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || self.method != "GET" {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&self.body)?;
        read_response(BufReader::new(stream))
    }

    /// Like [`Request::send`] but panics with context on a transport error.
    pub fn send_ok(&self, port: u16) -> Response {
        self.send(port)
            .unwrap_or_else(|e| panic!("{} {} to port {port} failed: {e}", self.method, self.path))
    }
}

/// Sends `request` — a whole HTTP/1.1 request as raw bytes, however malformed — to
/// 127.0.0.1:`port` and reads the whole response (the request should ask for `connection: close`).
pub fn send_raw(port: u16, request: &[u8]) -> std::io::Result<Response> {
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    // A server may answer and close before reading everything (e.g. headers too large): the
    // answer is what counts, so a failed write is not an error when a response follows.
    let written = stream.write_all(request);
    match read_response(BufReader::new(stream)) {
        Ok(response) => Ok(response),
        Err(read_error) => written.and(Err(read_error)),
    }
}

fn connect_from(ip: std::net::IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.connect_timeout(&target.into(), TIMEOUT)?;
    Ok(socket.into())
}

fn read_response(mut reader: impl BufRead) -> std::io::Result<Response> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("connection closed in headers".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
