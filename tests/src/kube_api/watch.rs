//! Watches: a chunked stream of `{"type":…,"object":…}` lines. The history after the requested
//! resourceVersion is replayed, then live changes follow; with no resourceVersion (or 0) the current objects
//! come first as ADDED. Selectors filter, and an object that starts or stops matching is sent as ADDED or
//! DELETED. BOOKMARKs every second when allowed, and one just before the stream ends after `timeoutSeconds`.
//! A watch whose history is compacted away gets one 410 Expired ERROR event, and its stream ends.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use super::kinds::KINDS;
use super::options::ListOptions;
use super::routes::ResourcePath;
use super::status::ApiError;
use super::store::{Change, Event, Poll, Store, Stored};
use super::wire;

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a watch waits before looking again (so it notices a closed client or a stop).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events are sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;

/// How a watch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stream was ended properly (timeout or ERROR event): the connection may serve more requests.
    Cleanly,
    /// The server stopped: the connection is being closed.
    Stopped,
}

/// Streams a watch of `resource` to `stream` until it ends.
pub fn serve(
    stream: &mut impl Write,
    store: &Store,
    resource: &ResourcePath,
    options: &ListOptions,
) -> io::Result<Ended> {
    let deadline = Instant::now() + options.timeout;
    let epoch = store.watch_epoch();
    let watch = Watch { resource, options };
    let mut out = Vec::new();
    let mut cursor = match options
        .resource_version
        .filter(|&rv| rv > 0 && !options.send_initial_events)
    {
        Some(requested) => {
            if let Err(oldest) = store.check_watch_start(requested) {
                wire::start_chunked(stream)?;
                return watch.expire(stream, requested, oldest);
            }
            requested
        }
        None => {
            let page = store.list(
                resource.kind,
                resource.namespace.as_deref(),
                |s| watch.matches(s),
                None,
                None,
            );
            let page = page.map_err(|e| io::Error::other(e.message))?;
            for stored in &page.items {
                line(&mut out, "ADDED", &stored.json);
            }
            page.resource_version
        }
    };
    wire::start_chunked(stream)?;
    if options.send_initial_events && options.bookmarks {
        out.extend_from_slice(watch.bookmark(cursor, true).as_bytes());
    }
    flush(stream, &mut out)?;
    let mut last_bookmark = Instant::now();
    loop {
        let wait = POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()));
        match store.poll(cursor, epoch, wait) {
            Poll::Stopped => return Ok(Ended::Stopped),
            Poll::Expired(oldest) => return watch.expire(stream, cursor, oldest),
            Poll::Quiet => {}
            Poll::Changes(events, reached) => {
                for event in &events {
                    if let Some((kind, object)) = watch.translate(event) {
                        line(&mut out, kind, &object.json);
                        if out.len() >= CHUNK_BYTES {
                            flush(stream, &mut out)?;
                        }
                    }
                }
                cursor = reached;
            }
        }
        if options.bookmarks && last_bookmark.elapsed() >= BOOKMARK_INTERVAL {
            out.extend_from_slice(watch.bookmark(cursor, false).as_bytes());
            last_bookmark = Instant::now();
        }
        flush(stream, &mut out)?;
        if Instant::now() >= deadline {
            if options.bookmarks {
                out.extend_from_slice(watch.bookmark(cursor, false).as_bytes());
            }
            flush(stream, &mut out)?;
            wire::end_chunked(stream)?;
            return Ok(Ended::Cleanly);
        }
    }
}

struct Watch<'a> {
    resource: &'a ResourcePath,
    options: &'a ListOptions,
}

impl Watch<'_> {
    fn matches(&self, stored: &Stored) -> bool {
        self.resource
            .name
            .as_ref()
            .is_none_or(|name| *name == stored.name)
            && self.options.matches(&stored.value)
    }

    /// The event type and object to send for a change, if the watch sees it.
    fn translate<'e>(&self, event: &'e Event) -> Option<(&'static str, &'e Stored)> {
        if event.kind != self.resource.kind
            || self
                .resource
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != event.object.namespace)
        {
            return None;
        }
        let now = self.matches(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.matches(p));
        let kind = match (event.change, before, now) {
            (Change::Added, _, true) => "ADDED",
            (Change::Modified, true, true) => "MODIFIED",
            (Change::Modified, false, true) => "ADDED",
            (Change::Modified, true, false) | (Change::Deleted, true, _) => "DELETED",
            _ => return None,
        };
        Some((kind, &event.object))
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> String {
        let kind = &KINDS[self.resource.kind];
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object =
            json!({"kind": kind.kind, "apiVersion": kind.api_version(), "metadata": metadata});
        format!("{{\"type\":\"BOOKMARK\",\"object\":{object}}}\n")
    }

    fn expire(&self, stream: &mut impl Write, requested: u64, oldest: u64) -> io::Result<Ended> {
        let status = ApiError::too_old(requested, oldest).to_status();
        wire::write_chunk(
            stream,
            format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n").as_bytes(),
        )?;
        wire::end_chunked(stream)?;
        Ok(Ended::Cleanly)
    }
}

fn line(out: &mut Vec<u8>, kind: &str, object_json: &str) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object_json.as_bytes());
    out.extend_from_slice(b"}\n");
}

fn flush(stream: &mut impl Write, out: &mut Vec<u8>) -> io::Result<()> {
    wire::write_chunk(stream, out)?;
    out.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::routes::resource_path;
    use crate::kube_api::wire::{Request, parse_query};
    use serde_json::Value;

    fn service(name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}})
    }

    /// The event lines a one-second watch of `path?query` sends, as (type, name or resourceVersion).
    fn watch(store: &Store, path: &str, query: &str) -> Vec<(String, String)> {
        let request = Request {
            method: "GET".into(),
            path: path.into(),
            target: String::new(),
            query: parse_query(&format!("watch=1&timeoutSeconds=1&{query}")),
            close: false,
        };
        let options = ListOptions::from_request(&request).unwrap();
        let mut out = Vec::new();
        let ended = serve(&mut out, store, &resource_path(path).unwrap(), &options).unwrap();
        assert_eq!(ended, Ended::Cleanly);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("0\r\n\r\n"), "the stream is ended: {text}");
        text.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let event: Value = serde_json::from_str(l).unwrap();
                let object = &event["object"];
                let label = match event["type"].as_str().unwrap() {
                    "ERROR" => object["message"].as_str().unwrap().to_string(),
                    "BOOKMARK" => object["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    _ => object["metadata"]["name"].as_str().unwrap().to_string(),
                };
                (event["type"].as_str().unwrap().to_string(), label)
            })
            .collect()
    }

    fn events(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn without_a_resource_version_the_current_objects_come_first() {
        let store = Store::new();
        store.apply(service("web", "web")).unwrap();
        store.apply(service("db", "db")).unwrap();
        assert_eq!(
            watch(&store, "/api/v1/namespaces/shop/services", ""),
            events(&[("ADDED", "db"), ("ADDED", "web")])
        );
        assert_eq!(
            watch(
                &store,
                "/api/v1/services",
                "resourceVersion=0&labelSelector=app%3Dweb"
            ),
            events(&[("ADDED", "web")])
        );
    }

    #[test]
    fn history_is_replayed_and_selectors_turn_changes_into_added_and_deleted() {
        let store = Store::new();
        let start = store.apply(service("web", "web")).unwrap();
        store.apply(service("web", "db")).unwrap();
        store.apply(service("web", "web")).unwrap();
        store.apply(service("web", "web")).unwrap();
        assert!(store.delete(0, "shop", "web"));
        assert_eq!(
            watch(
                &store,
                "/api/v1/services",
                &format!("resourceVersion={start}&labelSelector=app%3Dweb")
            ),
            events(&[
                ("DELETED", "web"),
                ("ADDED", "web"),
                ("MODIFIED", "web"),
                ("DELETED", "web")
            ])
        );
        assert_eq!(
            watch(
                &store,
                "/api/v1/namespaces/other/services",
                &format!("resourceVersion={start}")
            ),
            events(&[])
        );
    }

    #[test]
    fn a_watch_from_before_the_compaction_gets_410_and_bookmarks_carry_the_version() {
        let store = Store::new();
        store.apply(service("web", "web")).unwrap();
        store.apply(service("db", "db")).unwrap();
        store.compact();
        assert_eq!(
            watch(&store, "/api/v1/services", "resourceVersion=1"),
            events(&[("ERROR", "too old resource version: 1 (3)")])
        );
        let bookmarks = watch(
            &store,
            "/api/v1/services",
            "resourceVersion=2&allowWatchBookmarks=true",
        );
        assert!(
            !bookmarks.is_empty(),
            "a bookmark at least before the timeout"
        );
        assert!(
            bookmarks
                .iter()
                .all(|b| *b == ("BOOKMARK".to_string(), "2".to_string())),
            "{bookmarks:?}"
        );
    }

    #[test]
    fn send_initial_events_ends_them_with_an_annotated_bookmark() {
        let store = Store::new();
        store.apply(service("web", "web")).unwrap();
        let request = Request {
            method: "GET".into(),
            path: "/api/v1/services".into(),
            target: String::new(),
            query: parse_query(
                "watch=1&timeoutSeconds=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
            ),
            close: false,
        };
        let options = ListOptions::from_request(&request).unwrap();
        let mut out = Vec::new();
        serve(
            &mut out,
            &store,
            &resource_path("/api/v1/services").unwrap(),
            &options,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let added = text.find("\"type\":\"ADDED\"").unwrap();
        let end = text.find("\"k8s.io/initial-events-end\":\"true\"").unwrap();
        assert!(added < end, "{text}");
    }
}
