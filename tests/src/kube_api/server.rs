//! The listener and its connections: one thread accepts, one thread per connection serves requests in turn
//! (keep-alive) and logs each. Stopping closes the listener and shuts every open connection down.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::discovery;
use super::list;
use super::options::ListOptions;
use super::routes;
use super::status::ApiError;
use super::store::Store;
use super::watch::{self, Ended};
use super::wire::{self, Request};

/// What every thread of the server shares; it outlives stops and restarts.
#[derive(Debug)]
pub struct Shared {
    /// The objects.
    pub store: Store,
    port: u16,
    log: Mutex<Vec<String>>,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

/// A listening socket and its accepting thread.
#[derive(Debug)]
pub struct Listener {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Shared {
    /// State for a server on `port`.
    pub fn new(port: u16) -> Shared {
        Shared {
            store: Store::new(),
            port,
            log: Mutex::new(Vec::new()),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        }
    }

    /// Every request so far, as `METHOD target`.
    pub fn request_log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// Shuts down every open connection and ends every watch.
    pub fn close_connections(&self) {
        for (_, stream) in lock(&self.connections).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.store.stop_watches();
    }
}

/// Binds 127.0.0.1:`port` and accepts connections on a thread until [`Listener::stop`].
pub fn listen(shared: Arc<Shared>, port: u16) -> io::Result<Listener> {
    let socket = TcpListener::bind(("127.0.0.1", port))?;
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = stopping.clone();
    let thread = std::thread::Builder::new()
        .name(format!("kube-fake-accept-{port}"))
        .spawn(move || accept(socket, shared, flag))?;
    Ok(Listener {
        stopping,
        thread: Some(thread),
    })
}

impl Listener {
    /// Stops accepting and closes the listening socket (open connections are left to the caller).
    pub fn stop(mut self, port: u16) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag and drops the socket.
        let _ = TcpStream::connect(("127.0.0.1", port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept(socket: TcpListener, shared: Arc<Shared>, stopping: Arc<AtomicBool>) {
    loop {
        let accepted = socket.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        lock(&shared.connections).insert(id, registered);
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("kube-fake-conn-{id}"))
            .spawn(move || {
                let _ = serve_connection(&worker, stream);
                if let Some(stream) = lock(&worker.connections).remove(&id) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            });
        if spawned.is_err() {
            lock(&shared.connections).remove(&id);
        }
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let request = match wire::read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(error) => {
                let status =
                    ApiError::bad_request(format!("malformed HTTP request: {error}")).to_status();
                return wire::write_json(&mut writer, 400, status.to_string().as_bytes(), true);
            }
        };
        lock(&shared.log).push(format!("{} {}", request.method, request.target));
        if !respond(shared, &request, &mut writer)? || request.close {
            return Ok(());
        }
    }
}

/// Answers one request; false when the connection must close after it.
fn respond(shared: &Shared, request: &Request, writer: &mut TcpStream) -> io::Result<bool> {
    let error = |writer: &mut TcpStream, error: ApiError, close: bool| {
        wire::write_json(
            writer,
            error.code,
            error.to_status().to_string().as_bytes(),
            close,
        )
        .map(|()| !close)
    };
    if request.method != "GET" {
        return error(writer, ApiError::method_not_allowed(&request.method), true);
    }
    let address = format!("127.0.0.1:{}", shared.port);
    if let Some(document) = discovery::document(&request.path, &address) {
        wire::write_json(writer, 200, document.to_string().as_bytes(), request.close)?;
        return Ok(true);
    }
    let Some(resource) = routes::resource_path(&request.path) else {
        return error(writer, ApiError::unknown_path(), request.close);
    };
    let options = match ListOptions::from_request(request) {
        Ok(options) => options,
        Err(e) => return error(writer, e, request.close),
    };
    if options.watch {
        return Ok(watch::serve(writer, &shared.store, &resource, &options)? == Ended::Cleanly);
    }
    match list::respond(&shared.store, &resource, &options) {
        Ok(body) => wire::write_json(writer, 200, body.as_bytes(), request.close).map(|()| true),
        Err(e) => error(writer, e, request.close),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
