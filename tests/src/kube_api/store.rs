//! The object store, like etcd behind the API server: objects per kind in key order, one global
//! resourceVersion counter, and the history of changes that watches replay. Objects are serialized once when
//! stored and shared (`Arc`) by lists, watches and the history, so no event copies the store.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use super::continuation::Continuation;
use super::kinds::{self, KINDS};
use super::status::ApiError;
use super::timestamp;

/// Changes kept for watches; older ones are forgotten as if compacted (a watch that far behind gets 410 and
/// lists again). It bounds memory: each change keeps its version of the object alive.
const HISTORY_LIMIT: usize = 10_000;

/// An object as stored: its JSON value, the same serialized once, and its key.
#[derive(Debug)]
pub struct Stored {
    /// The object, with `metadata.resourceVersion` set.
    pub value: Value,
    /// `value` serialized.
    pub json: String,
    /// Namespace ("" for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Replaced.
    Modified,
    /// Removed.
    Deleted,
}

/// One change in the history.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change created.
    pub resource_version: u64,
    /// Index of the object's kind in [`KINDS`].
    pub kind: usize,
    /// What happened.
    pub change: Change,
    /// The object after the change (for a deletion: its last state, at the deletion's resourceVersion).
    pub object: Arc<Stored>,
    /// The object before a modification, so a watch can tell when it starts or stops matching a selector.
    pub previous: Option<Arc<Stored>>,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The list's `metadata.resourceVersion`.
    pub resource_version: u64,
    /// The objects, in key order.
    pub items: Vec<Arc<Stored>>,
    /// The token for the next page, when more objects match.
    pub continuation: Option<String>,
    /// How many matching objects follow this page.
    pub remaining: u64,
}

/// What a watch learns when it polls.
#[derive(Debug)]
pub enum Poll {
    /// Changes after the cursor (maybe none of the watched kind), and the resourceVersion now reached.
    Changes(Vec<Event>, u64),
    /// The cursor is older than the history: the watch must end with 410 Expired (oldest kept given).
    Expired(u64),
    /// The server was stopped: the watch ends without a word.
    Stopped,
    /// Nothing happened within the wait.
    Quiet,
}

/// The store, shared by the server's threads.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    objects: Vec<BTreeMap<(String, String), Arc<Stored>>>,
    resource_version: u64,
    history: VecDeque<Event>,
    /// Changes at or before this resourceVersion are forgotten.
    compacted: u64,
    /// Counts `compact()` calls: a watch open across one ends with 410.
    compactions: u64,
    /// Counts server stops: a watch open across one ends.
    stops: u64,
    uids: u64,
    uid_seed: u64,
}

/// The counters a watch remembers when it starts, to notice compactions and stops.
#[derive(Debug, Clone, Copy)]
pub struct WatchEpoch {
    compactions: u64,
    stops: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store at resourceVersion 0.
    pub fn new() -> Store {
        let uid_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Store {
            state: Mutex::new(State {
                objects: KINDS.iter().map(|_| BTreeMap::new()).collect(),
                resource_version: 0,
                history: VecDeque::new(),
                compacted: 0,
                compactions: 0,
                stops: 0,
                uids: 0,
                uid_seed,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates or replaces an object; the error names the field that is missing or wrong.
    pub fn apply(&self, mut object: Value) -> Result<u64, String> {
        let api_version = string_field(&object, "/apiVersion")?;
        let kind_name = string_field(&object, "/kind")?;
        let kind = kinds::by_api_version(&api_version, &kind_name).ok_or_else(|| {
            format!("apiVersion {api_version:?} kind {kind_name:?} is not served by the fake")
        })?;
        let name = string_field(&object, "/metadata/name")?;
        let namespace = match (
            KINDS[kind].namespaced,
            object.pointer("/metadata/namespace"),
        ) {
            (true, None) => "default".to_string(),
            (true, Some(Value::String(ns))) if !ns.is_empty() => ns.clone(),
            (false, None) => String::new(),
            (_, Some(other)) => {
                return Err(format!(
                    "metadata.namespace {other} of {kind_name} {name:?}: {}",
                    if KINDS[kind].namespaced {
                        "must be a non-empty string"
                    } else {
                        "a cluster-scoped kind has no namespace"
                    }
                ));
            }
        };
        let mut state = self.lock();
        let resource_version = state.resource_version + 1;
        let key = (namespace.clone(), name.clone());
        let previous = state.objects[kind].get(&key).cloned();
        let uid = previous
            .as_ref()
            .and_then(|p| p.value.pointer("/metadata/uid").cloned())
            .unwrap_or_else(|| Value::String(state.next_uid()));
        let created = previous
            .as_ref()
            .and_then(|p| p.value.pointer("/metadata/creationTimestamp").cloned())
            .unwrap_or_else(|| Value::String(timestamp::now()));
        let generation = match &previous {
            None => 1,
            Some(p) => {
                let old = p
                    .value
                    .pointer("/metadata/generation")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                old + u64::from(p.value.get("spec") != object.get("spec"))
            }
        };
        let metadata = object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("metadata of {kind_name} {name:?} is not an object"))?;
        if KINDS[kind].namespaced {
            metadata.insert("namespace".into(), Value::String(namespace.clone()));
        }
        metadata.insert(
            "resourceVersion".into(),
            Value::String(resource_version.to_string()),
        );
        metadata.entry("uid").or_insert(uid);
        metadata.entry("creationTimestamp").or_insert(created);
        metadata
            .entry("generation")
            .or_insert(Value::from(generation));
        let stored = Arc::new(Stored::new(object, namespace, name));
        state.objects[kind].insert(key, stored.clone());
        let change = if previous.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        state.record(Event {
            resource_version,
            kind,
            change,
            object: stored,
            previous,
        });
        drop(state);
        self.changed.notify_all();
        Ok(resource_version)
    }

    /// Removes an object; false when there was none.
    pub fn delete(&self, kind: usize, namespace: &str, name: &str) -> bool {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(previous) = state.objects[kind].remove(&key) else {
            return false;
        };
        let resource_version = state.resource_version + 1;
        let mut last = previous.value.clone();
        if let Some(metadata) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(resource_version.to_string()),
            );
        }
        let object = Arc::new(Stored::new(last, key.0, key.1));
        state.record(Event {
            resource_version,
            kind,
            change: Change::Deleted,
            object,
            previous: Some(previous),
        });
        drop(state);
        self.changed.notify_all();
        true
    }

    /// Every object of a kind, in key order.
    pub fn objects(&self, kind: usize) -> Vec<Value> {
        self.lock().objects[kind]
            .values()
            .map(|s| s.value.clone())
            .collect()
    }

    /// One object, if it exists.
    pub fn get(&self, kind: usize, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.lock().objects[kind]
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Forgets the history and ends every open watch with 410 Expired.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.history.clear();
        state.compacted = state.resource_version;
        state.compactions += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Ends every open watch (the server is stopping).
    pub fn stop_watches(&self) {
        self.lock().stops += 1;
        self.changed.notify_all();
    }

    /// One page of the objects of `kind` (in `namespace` when given) that `matches`, after `continuation`.
    pub fn list(
        &self,
        kind: usize,
        namespace: Option<&str>,
        matches: impl Fn(&Stored) -> bool,
        limit: Option<usize>,
        continuation: Option<&Continuation>,
    ) -> Result<Page, ApiError> {
        let state = self.lock();
        if let Some(c) = continuation
            && c.resource_version < state.compacted
        {
            return Err(ApiError::continue_expired());
        }
        let start = match continuation {
            Some(c) => Bound::Excluded((c.namespace.clone(), c.name.clone())),
            None => match namespace {
                Some(ns) => Bound::Included((ns.to_string(), String::new())),
                None => Bound::Unbounded,
            },
        };
        let mut candidates = state.objects[kind]
            .range((start, Bound::Unbounded))
            .take_while(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, stored)| stored)
            .filter(|stored| matches(stored));
        let limit = limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let items: Vec<Arc<Stored>> = candidates.by_ref().take(limit).cloned().collect();
        let remaining = candidates.count() as u64;
        let resource_version = continuation.map_or(state.resource_version, |c| c.resource_version);
        let continuation = match items.last() {
            Some(last) if remaining > 0 => Some(
                Continuation {
                    resource_version,
                    namespace: last.namespace.clone(),
                    name: last.name.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(Page {
            resource_version,
            items,
            continuation,
            remaining,
        })
    }

    /// The counters a new watch starts from.
    pub fn watch_epoch(&self) -> WatchEpoch {
        let state = self.lock();
        WatchEpoch {
            compactions: state.compactions,
            stops: state.stops,
        }
    }

    /// Waits up to `wait` for changes after `cursor`, and returns them (every kind; the caller filters).
    pub fn poll(&self, cursor: u64, epoch: WatchEpoch, wait: Duration) -> Poll {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, wait, |s| {
                s.resource_version <= cursor
                    && s.compactions == epoch.compactions
                    && s.stops == epoch.stops
            })
            .unwrap_or_else(|p| p.into_inner());
        if state.stops != epoch.stops {
            return Poll::Stopped;
        }
        if state.compactions != epoch.compactions || cursor < state.compacted {
            return Poll::Expired(state.compacted + 1);
        }
        if state.resource_version <= cursor {
            return Poll::Quiet;
        }
        let first = state
            .history
            .partition_point(|e| e.resource_version <= cursor);
        let events = state.history.range(first..).cloned().collect();
        Poll::Changes(events, state.resource_version)
    }

    /// Where a watch from `requested` starts: `Err(oldest kept)` when that history is forgotten.
    pub fn check_watch_start(&self, requested: u64) -> Result<(), u64> {
        let state = self.lock();
        if requested < state.compacted {
            Err(state.compacted + 1)
        } else {
            Ok(())
        }
    }
}

impl State {
    fn record(&mut self, event: Event) {
        self.resource_version = event.resource_version;
        self.history.push_back(event);
        while self.history.len() > HISTORY_LIMIT {
            if let Some(forgotten) = self.history.pop_front() {
                self.compacted = forgotten.resource_version;
            }
        }
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        let mixed = self.uid_seed ^ self.uids.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (mixed >> 32) as u32,
            (mixed >> 16) as u16,
            mixed as u16 & 0xfff,
            (self.uids >> 48) as u16 & 0xfff,
            self.uids & 0xffff_ffff_ffff
        )
    }
}

impl Stored {
    fn new(value: Value, namespace: String, name: String) -> Stored {
        let json = value.to_string();
        Stored {
            value,
            json,
            namespace,
            name,
        }
    }
}

fn string_field(object: &Value, pointer: &str) -> Result<String, String> {
    match object.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(format!(
            "{} must be a non-empty string, got {other}",
            field_name(pointer)
        )),
        None => Err(format!("{} is missing in {object}", field_name(pointer))),
    }
}

fn field_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, namespace: &str) -> Value {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": namespace}, "endpoints": []})
    }

    fn slices() -> usize {
        kinds::by_api_version("discovery.k8s.io/v1", "EndpointSlice").unwrap()
    }

    #[test]
    fn apply_sets_metadata_and_keeps_identity_on_replace() {
        let store = Store::new();
        assert_eq!(store.apply(slice("a", "shop")).unwrap(), 1);
        let first = store.get(slices(), "shop", "a").unwrap();
        let metadata = &first.value["metadata"];
        assert_eq!(metadata["resourceVersion"], "1");
        assert_eq!(metadata["generation"], 1);
        assert_eq!(metadata["uid"].as_str().unwrap().len(), 36);
        assert!(
            metadata["creationTimestamp"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        let mut changed = slice("a", "shop");
        changed["spec"] = json!({"x": 1});
        assert_eq!(store.apply(changed).unwrap(), 2);
        let second = store.get(slices(), "shop", "a").unwrap();
        assert_eq!(second.value["metadata"]["uid"], metadata["uid"]);
        assert_eq!(second.value["metadata"]["generation"], 2);
        assert_eq!(second.value["metadata"]["resourceVersion"], "2");
        assert_eq!(second.json, second.value.to_string());
    }

    #[test]
    fn apply_names_what_is_wrong() {
        let store = Store::new();
        let error = store
            .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}))
            .unwrap_err();
        assert!(error.contains("\"Secret\" is not served"), "{error}");
        let error = store
            .apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {}}))
            .unwrap_err();
        assert!(error.contains("metadata.name is missing"), "{error}");
        let error = store
            .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "b"}}))
            .unwrap_err();
        assert!(error.contains("cluster-scoped"), "{error}");
    }

    #[test]
    fn pages_follow_key_order_and_continue_after_the_last_key() {
        let store = Store::new();
        for name in ["e", "a", "d", "b", "c"] {
            store.apply(slice(name, "shop")).unwrap();
        }
        store.apply(slice("z", "other")).unwrap();
        let first = store
            .list(slices(), Some("shop"), |_| true, Some(2), None)
            .unwrap();
        let names = |p: &Page| p.items.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&first), ["a", "b"]);
        assert_eq!(first.remaining, 3);
        let token = Continuation::decode(first.continuation.as_deref().unwrap()).unwrap();
        let second = store
            .list(slices(), Some("shop"), |_| true, Some(2), Some(&token))
            .unwrap();
        assert_eq!(names(&second), ["c", "d"]);
        assert_eq!(second.resource_version, first.resource_version);
        let token = Continuation::decode(second.continuation.as_deref().unwrap()).unwrap();
        let last = store
            .list(slices(), Some("shop"), |_| true, Some(2), Some(&token))
            .unwrap();
        assert_eq!(names(&last), ["e"]);
        assert!(last.continuation.is_none());
        let all = store
            .list(slices(), None, |s| s.name != "c", None, None)
            .unwrap();
        assert_eq!(names(&all), ["z", "a", "b", "d", "e"]);
    }

    #[test]
    fn compaction_expires_old_tokens_and_old_watches() {
        let store = Store::new();
        for name in ["a", "b", "c"] {
            store.apply(slice(name, "shop")).unwrap();
        }
        let page = store.list(slices(), None, |_| true, Some(1), None).unwrap();
        let token = Continuation::decode(page.continuation.as_deref().unwrap()).unwrap();
        let epoch = store.watch_epoch();
        store.apply(slice("d", "shop")).unwrap();
        store.compact();
        assert_eq!(
            store
                .list(slices(), None, |_| true, Some(1), Some(&token))
                .unwrap_err()
                .code,
            410
        );
        assert_eq!(store.check_watch_start(3), Err(5));
        assert_eq!(store.check_watch_start(4), Ok(()));
        assert!(matches!(
            store.poll(4, epoch, Duration::ZERO),
            Poll::Expired(5)
        ));
        assert!(matches!(
            store.poll(4, store.watch_epoch(), Duration::ZERO),
            Poll::Quiet
        ));
    }

    #[test]
    fn the_history_forgets_its_oldest_changes_past_the_limit() {
        let store = Store::new();
        for _ in 0..HISTORY_LIMIT + 2 {
            store.apply(slice("a", "shop")).unwrap();
        }
        assert_eq!(
            store.check_watch_start(1),
            Err(3),
            "rv 2 is forgotten, so a watch from 1 would miss it"
        );
        assert_eq!(store.check_watch_start(2), Ok(()));
        let Poll::Changes(events, _) = store.poll(2, store.watch_epoch(), Duration::ZERO) else {
            panic!("expected changes");
        };
        assert_eq!(events.len(), HISTORY_LIMIT);
    }

    #[test]
    fn poll_returns_changes_after_the_cursor_with_the_previous_state() {
        let store = Store::new();
        store.apply(slice("a", "shop")).unwrap();
        store.apply(slice("a", "shop")).unwrap();
        assert!(store.delete(slices(), "shop", "a"));
        assert!(!store.delete(slices(), "shop", "a"));
        let Poll::Changes(events, now) = store.poll(1, store.watch_epoch(), Duration::ZERO) else {
            panic!("expected changes");
        };
        assert_eq!(now, 3);
        let changes: Vec<_> = events
            .iter()
            .map(|e| (e.resource_version, e.change))
            .collect();
        assert_eq!(changes, [(2, Change::Modified), (3, Change::Deleted)]);
        assert_eq!(events[1].object.value["metadata"]["resourceVersion"], "3");
        assert!(events[1].previous.is_some());
        let epoch = store.watch_epoch();
        store.stop_watches();
        assert!(matches!(
            store.poll(3, epoch, Duration::from_secs(5)),
            Poll::Stopped
        ));
    }
}
