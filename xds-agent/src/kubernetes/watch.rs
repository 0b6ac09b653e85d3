//! Watching the API server: a kube-rs watcher and reflector store per kind (per namespace when
//! `kubernetes.namespaces` lists some). Every event wakes the coalescer, which waits
//! [`COALESCE_WINDOW`] to gather a burst (a rollout), then builds a [`ClusterView`] from the
//! stores and publishes it — only once every watch has listed everything, so the first view is
//! complete. A relist (after an error, a restarted API server or `410 Gone`) is swapped into a
//! store whole when it completes, so no view sees a half-listed set; meanwhile the last view keeps
//! serving. Failed lists and watches are retried with kube-rs's default backoff.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector as reflect};
use kube::{Api, Client};
use tokio::sync::{Notify, watch};

use super::status::ClusterStatus;
use super::view::{ClusterView, IstioObject};
use crate::model::KubernetesSource;

/// How long a change waits for more before a view is built.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(100);

/// The Istio kinds read with `kubernetes.istio: true`: kind and plural, of `networking.istio.io/v1`
/// (the CRDs serve every stored version through v1).
const ISTIO_KINDS: [(&str, &str); 3] = [
    ("DestinationRule", "destinationrules"),
    ("ServiceEntry", "serviceentries"),
    ("WorkloadEntry", "workloadentries"),
];
const ISTIO_API_VERSION: &str = "networking.istio.io/v1";

/// The stores the coalescer reads.
struct Stores {
    services: Vec<Store<KubeService>>,
    slices: Vec<Store<EndpointSlice>>,
    istio: Vec<(&'static str, Store<DynamicObject>)>,
}

impl Stores {
    fn view(&self) -> ClusterView {
        let services = self
            .services
            .iter()
            .flat_map(Store::state)
            .map(|s| (*s).clone())
            .collect();
        let slices = self
            .slices
            .iter()
            .flat_map(Store::state)
            .map(|s| (*s).clone())
            .collect();
        let istio = self
            .istio
            .iter()
            .flat_map(|(kind, store)| {
                store
                    .state()
                    .into_iter()
                    .filter_map(|o| IstioObject::from_dynamic(&o, kind, ISTIO_API_VERSION))
            })
            .collect();
        ClusterView::new(services, slices, istio)
    }
}

/// Watch what `source` asks for and publish views on `views` until `shutdown` turns true.
pub async fn watch_cluster(
    client: Client,
    source: KubernetesSource,
    views: watch::Sender<Option<Arc<ClusterView>>>,
    status: Arc<ClusterStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let wake = Arc::new(Notify::new());
    let scopes: Vec<Option<String>> = if source.namespaces.is_empty() {
        vec![None]
    } else {
        source.namespaces.iter().cloned().map(Some).collect()
    };
    let mut stores = Stores {
        services: Vec::new(),
        slices: Vec::new(),
        istio: Vec::new(),
    };
    let mut tasks = Vec::new();
    for scope in &scopes {
        let (store, task) = typed::<KubeService>(&client, scope, "Service", &status, &wake);
        stores.services.push(store);
        tasks.push(task);
        let (store, task) = typed::<EndpointSlice>(&client, scope, "EndpointSlice", &status, &wake);
        stores.slices.push(store);
        tasks.push(task);
        if source.istio {
            for (kind, plural) in ISTIO_KINDS {
                let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", kind);
                let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
                let api: Api<DynamicObject> = match scope {
                    None => Api::all_with(client.clone(), &resource),
                    Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
                };
                let writer = reflector::store::Writer::new(resource);
                let store = writer.as_reader();
                let index = status.add_watch(watch_name(kind, scope));
                let stream = reflect(writer, watcher(api)).default_backoff();
                tasks.push(tokio::spawn(drive(
                    stream,
                    status.clone(),
                    index,
                    wake.clone(),
                )));
                stores.istio.push((kind, store));
            }
        }
    }
    loop {
        tokio::select! {
            () = wake.notified() => {}
            _ = shutdown.changed() => break,
        }
        tokio::time::sleep(COALESCE_WINDOW).await;
        if !status.all_synced() {
            continue;
        }
        let view = stores.view();
        let changed = views.send_if_modified(|current| {
            if current.as_deref() == Some(&view) {
                false
            } else {
                *current = Some(Arc::new(view));
                true
            }
        });
        if changed {
            status.view_published();
        }
    }
    for task in tasks {
        task.abort();
    }
}

fn watcher<K>(api: Api<K>) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

fn typed<K>(
    client: &Client,
    scope: &Option<String>,
    kind: &str,
    status: &Arc<ClusterStatus>,
    wake: &Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let api: Api<K> = match scope {
        None => Api::all(client.clone()),
        Some(namespace) => Api::namespaced(client.clone(), namespace),
    };
    let (store, writer) = reflector::store();
    let index = status.add_watch(watch_name(kind, scope));
    let stream = reflect(writer, watcher(api)).default_backoff();
    let task = tokio::spawn(drive(stream, status.clone(), index, wake.clone()));
    (store, task)
}

fn watch_name(kind: &str, scope: &Option<String>) -> String {
    match scope {
        None => format!("{kind} in all namespaces"),
        Some(namespace) => format!("{kind} in {namespace}"),
    }
}

/// Run one watch: note its sync and errors, wake the coalescer on every change.
async fn drive<K>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    status: Arc<ClusterStatus>,
    index: usize,
    wake: Arc<Notify>,
) {
    let mut stream = std::pin::pin!(stream);
    let mut failing = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::InitDone) => {
                if failing {
                    tracing::info!(watch = index, "Kubernetes watch recovered");
                    failing = false;
                }
                status.synced(index);
                wake.notify_one();
            }
            // The store buffers a relist and swaps it in at InitDone.
            Ok(Event::Init | Event::InitApply(_)) => {}
            Ok(Event::Apply(_) | Event::Delete(_)) => wake.notify_one(),
            Err(error) => {
                let message = error.to_string();
                if !failing {
                    tracing::warn!(error = %message, "Kubernetes API server: list or watch failed; retrying with backoff, still serving the last view");
                } else {
                    tracing::debug!(error = %message, "Kubernetes list or watch failed again");
                }
                failing = true;
                status.failed(index, message);
            }
        }
    }
}
