//! The query parameters of lists and watches, read and checked once; a bad one is a 400 naming it.
//! `resourceVersion` and `resourceVersionMatch` are accepted for lists but every list is served at the
//! newest state (this fake keeps no old versions of objects).

use std::time::Duration;

use super::continuation::Continuation;
use super::fields::FieldSelector;
use super::labels::LabelSelector;
use super::status::ApiError;
use super::wire::Request;

/// The longest a watch stays open when the client gives no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// What a list or watch asked for.
#[derive(Debug)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 or absent: everything).
    pub limit: Option<usize>,
    /// `continue`.
    pub continuation: Option<Continuation>,
    /// `resourceVersion` (absent and "" read as None).
    pub resource_version: Option<u64>,
    /// `watch=true` or `watch=1`.
    pub watch: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: a watch starts with the current objects, then a bookmark marks their end.
    pub send_initial_events: bool,
    /// `timeoutSeconds`, or the default when absent or 0 (as the real server does).
    pub timeout: Duration,
}

impl ListOptions {
    /// Reads the parameters of `request`.
    pub fn from_request(request: &Request) -> Result<ListOptions, ApiError> {
        let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("labelSelector: {e}")))?;
        let fields = FieldSelector::parse(request.param("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("fieldSelector: {e}")))?;
        let limit = number(request, "limit")?.map(|n| n as usize);
        let continuation = match request.param("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(Continuation::decode(token).map_err(ApiError::bad_request)?),
            None => None,
        };
        let resource_version = number(request, "resourceVersion")?;
        let timeout = number(request, "timeoutSeconds")?
            .filter(|&seconds| seconds > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT);
        if let Some(rv_match) = request.param("resourceVersionMatch")
            && !["", "NotOlderThan", "Exact"].contains(&rv_match)
        {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: {rv_match:?} is not one of NotOlderThan, Exact"
            )));
        }
        Ok(ListOptions {
            labels,
            fields,
            limit,
            continuation,
            resource_version,
            watch: flag(request, "watch")?,
            bookmarks: flag(request, "allowWatchBookmarks")?,
            send_initial_events: flag(request, "sendInitialEvents")?,
            timeout,
        })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, object: &serde_json::Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

fn number(request: &Request, name: &str) -> Result<Option<u64>, ApiError> {
    match request.param(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: {text:?} is not a non-negative integer"))
        }),
    }
}

fn flag(request: &Request, name: &str) -> Result<bool, ApiError> {
    match request.param(name) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: {other:?} is not a boolean"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::wire::parse_query;

    fn request(query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/api/v1/services".into(),
            target: format!("/api/v1/services?{query}"),
            query: parse_query(query),
            close: false,
        }
    }

    #[test]
    fn watch_parameters_are_read() {
        let options = ListOptions::from_request(&request(
            "watch=1&resourceVersion=12&allowWatchBookmarks=true&timeoutSeconds=5&labelSelector=app%3Dweb",
        ))
        .unwrap();
        assert!(options.watch && options.bookmarks && !options.send_initial_events);
        assert_eq!(options.resource_version, Some(12));
        assert_eq!(options.timeout, Duration::from_secs(5));
        assert_eq!(options.labels, LabelSelector::parse("app=web").unwrap());
    }

    #[test]
    fn list_parameters_default_to_everything_now() {
        let options = ListOptions::from_request(&request(
            "resourceVersion=&resourceVersionMatch=NotOlderThan",
        ))
        .unwrap();
        assert!(!options.watch);
        assert_eq!(options.limit, None);
        assert_eq!(options.resource_version, None);
        assert_eq!(options.timeout, DEFAULT_WATCH_TIMEOUT);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (query, says) in [
            ("limit=-1", "limit"),
            ("watch=yes", "watch"),
            ("labelSelector=a%3D%3D%3D", "labelSelector"),
            ("fieldSelector=spec.x%3D1", "fieldSelector"),
            ("continue=zz", "continue key is not valid"),
            ("resourceVersion=abc", "resourceVersion"),
            ("resourceVersionMatch=Newest", "resourceVersionMatch"),
        ] {
            let error = ListOptions::from_request(&request(query)).unwrap_err();
            assert_eq!(error.code, 400, "{query}");
            assert!(error.message.contains(says), "{query}: {}", error.message);
        }
    }
}
