//! A fake Kubernetes API server for tests: it speaks the real API over plain HTTP on 127.0.0.1, enough for
//! kubectl and kube-rs watchers and reflectors, with the store in the test's hands.
//!
//! **What it does.** Serves the kinds of [`kinds::KINDS`] (`v1` Service, Namespace, Pod;
//! `discovery.k8s.io/v1` EndpointSlice; `networking.istio.io/v1` DestinationRule, ServiceEntry,
//! WorkloadEntry). Legacy discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`);
//! clients asking for aggregated discovery get these and fall back. Lists (`<Kind>List`, across namespaces
//! or in one) and gets of one object, with `labelSelector` (`=`, `==`, `!=`, exists, `!`, `in`, `notin`,
//! `>`, `<`), `fieldSelector` (`metadata.name`, `metadata.namespace`), `limit` and `continue`
//! (`remainingItemCount` too). Watches (`watch=true|1`) as chunked JSON lines: history after
//! `resourceVersion` replayed then live changes, current objects as ADDED first for `resourceVersion` 0 or
//! none (and for `sendInitialEvents=true`, closed by the `k8s.io/initial-events-end` bookmark), objects
//! entering or leaving a selector as ADDED/DELETED, BOOKMARKs every second with `allowWatchBookmarks`,
//! the stream ended after `timeoutSeconds`. [`FakeApiServer::compact`] forgets the history like etcd
//! compaction: old `resourceVersion`s and `continue` tokens get 410 Expired and open watches end with that
//! ERROR event. [`FakeApiServer::stop`] closes the listener and every connection; `restart` listens again on
//! the same port with the same objects. Errors are `Status` objects with their HTTP code.
//!
//! **What it does not.** No TLS, no authentication or authorization, no writes over HTTP (every method but
//! GET is 405: tests change objects with [`FakeApiServer::apply`] and [`FakeApiServer::delete`]), no
//! admission, defaulting or schema validation (an object may sit in a namespace no Namespace object names), no protobuf, no Table output (kubectl prints from the plain
//! objects), no aggregated discovery, no OpenAPI. `resourceVersion` and `resourceVersionMatch` are accepted
//! on lists but every list is served at the newest state, and the pages of a paginated list come from the
//! store as it is when each is asked for (the real server serves them all at the first page's version).
//! Field selectors cover only the name and namespace. The history keeps the last 10,000 changes (a watch further
//! behind gets 410, as from a real server whose watch cache moved on).

mod continuation;
mod discovery;
mod fields;
pub mod kinds;
mod kubeconfig;
mod labels;
mod list;
mod options;
mod routes;
mod server;
mod status;
mod store;
mod timestamp;
mod watch;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running fake API server; dropping it stops it and removes its kubeconfig.
pub struct FakeApiServer {
    shared: Arc<server::Shared>,
    port: u16,
    listener: Option<server::Listener>,
    directory: PathBuf,
}

impl FakeApiServer {
    /// Starts a server on a free 127.0.0.1 port and writes its kubeconfig.
    pub fn start() -> FakeApiServer {
        let port = crate::free_port();
        let shared = Arc::new(server::Shared::new(port));
        let listener = server::listen(shared.clone(), port)
            .unwrap_or_else(|e| panic!("fake API server: cannot listen on 127.0.0.1:{port}: {e}"));
        let directory = std::env::temp_dir().join(format!(
            "envoy-affinity-kube-fake-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&directory).unwrap_or_else(|e| {
            panic!(
                "fake API server: cannot create {}: {e}",
                directory.display()
            )
        });
        let server = FakeApiServer {
            shared,
            port,
            listener: Some(listener),
            directory,
        };
        let path = server.kubeconfig();
        std::fs::write(&path, kubeconfig::text(&server.url()))
            .unwrap_or_else(|e| panic!("fake API server: cannot write {}: {e}", path.display()));
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig file whose current context is this server (no credentials).
    pub fn kubeconfig(&self) -> PathBuf {
        self.directory.join("kubeconfig")
    }

    /// Creates or replaces an object by (apiVersion, kind, namespace, name) and tells watchers (ADDED or
    /// MODIFIED). Sets `metadata.resourceVersion`, and `uid`, `creationTimestamp` and `generation` when
    /// missing (kept from the object replaced; `generation` goes up when `spec` changes); a namespaced object
    /// without a namespace goes to `default`. Returns the new resourceVersion. Panics, naming the field, on
    /// an object it cannot store (no apiVersion/kind/name, a kind not served).
    pub fn apply(&self, object: Value) -> u64 {
        self.shared
            .store
            .apply(object)
            .unwrap_or_else(|e| panic!("FakeApiServer::apply: {e}"))
    }

    /// Deletes an object and tells watchers (DELETED); false when there was none. `namespace` is "" for
    /// cluster-scoped kinds.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        self.shared
            .store
            .delete(served(api_version, kind), namespace, name)
    }

    /// Every object of a kind, in (namespace, name) order.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        self.shared.store.objects(served(api_version, kind))
    }

    /// The current resourceVersion (the last change's; 0 before any).
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Forgets the change history, as etcd compaction with watch-cache expiry would: watches from an older
    /// resourceVersion and lists with an older `continue` token get 410 Expired, and open watches end with
    /// that ERROR event, so clients must list again.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// Stops serving: closes the listener and every open connection (the API server is down).
    pub fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop(self.port);
        }
        self.shared.close_connections();
    }

    /// Listens again on the same port with the same objects (stopping first if running). Panics if the port
    /// cannot be had back within 5 s.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match server::listen(self.shared.clone(), self.port) {
                Ok(listener) => {
                    self.listener = Some(listener);
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "fake API server: cannot listen again on 127.0.0.1:{}: {e}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Every request served so far, as `GET /apis/…?…` (the target as sent).
    pub fn request_log(&self) -> Vec<String> {
        self.shared.request_log()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn served(api_version: &str, kind: &str) -> usize {
    kinds::by_api_version(api_version, kind).unwrap_or_else(|| {
        panic!("FakeApiServer: apiVersion {api_version:?} kind {kind:?} is not served")
    })
}
