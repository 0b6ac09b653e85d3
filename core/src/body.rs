//! The request body as the body key sources see it: whether there is one to read, the window of
//! its first `maxBodyBytes` bytes, and why a body source found nothing (for the filter's counters).
//!
//! A body is read only when its content type is JSON (`application/json`, `application/*+json`,
//! parameters ignored). The window is final when the body ended or `maxBodyBytes` bytes have
//! arrived: then a source that is still undecided is missing, and the next source is tried.

use std::cell::{Cell, OnceCell};

use crate::json_scan::{Scanned, Scanner, Stop};
use crate::request::RequestView;

/// The body as far as the host has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// No body to read: the request ended with its headers.
    None,
    /// A body follows, but none of it has arrived yet (the filter is at the request headers).
    Pending,
    /// The first bytes of the body (the host may give more than `maxBodyBytes`; the rest is not
    /// read). `complete` when the body has ended.
    Bytes {
        /// The bytes received so far, from the start.
        bytes: &'a [u8],
        /// The body has ended.
        complete: bool,
    },
}

/// Why a body source found no key in a body it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyIssue {
    /// The content type is not JSON, or the body is not JSON.
    NotJson,
    /// `maxBodyBytes` arrived before the key was decided.
    TooLarge,
    /// The body ended inside the JSON document.
    Truncated,
}

/// What a source says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The source's normalised value.
    Found(Vec<u8>),
    /// Not present (or empty): the next source is tried.
    Missing,
    /// Undecided until more of the body arrives.
    NeedBody,
}

/// A body source's own answer from the bytes it has: a value, definitely none, or a stop.
pub(crate) type BodyRead = Scanned<Option<Vec<u8>>>;

/// The body of one request, shared by the body sources of one evaluation. Nothing is read from
/// the request (not even its content type) until a body source asks: a configuration without
/// body sources costs nothing on the request path.
pub(crate) struct BodyWindow<'a, R: RequestView> {
    request: &'a R,
    max_body_bytes: usize,
    state: OnceCell<WindowState<'a>>,
    /// The first issue a body source met (reported once per request).
    issue: Cell<Option<BodyIssue>>,
}

enum WindowState<'a> {
    Absent,
    NotJson,
    Pending,
    Bytes {
        bytes: &'a [u8],
        full: bool,
        complete: bool,
    },
}

impl<'a, R: RequestView> BodyWindow<'a, R> {
    /// The window over `request`'s body, limited to `max_body_bytes`; nothing is read yet.
    pub(crate) fn of(request: &'a R, max_body_bytes: usize) -> BodyWindow<'a, R> {
        BodyWindow {
            request,
            max_body_bytes,
            state: OnceCell::new(),
            issue: Cell::new(None),
        }
    }

    fn state(&self) -> &WindowState<'a> {
        self.state
            .get_or_init(|| window_state(self.request, self.max_body_bytes))
    }

    /// Runs `read` over the window and turns its answer into a [`Lookup`], noting why a body gave
    /// nothing.
    pub(crate) fn lookup(&self, read: impl FnOnce(&mut Scanner<'a>, bool) -> BodyRead) -> Lookup {
        let (bytes, full, complete) = match *self.state() {
            WindowState::Absent => return Lookup::Missing,
            WindowState::NotJson => return self.missing(BodyIssue::NotJson),
            WindowState::Pending => return Lookup::NeedBody,
            WindowState::Bytes {
                bytes,
                full,
                complete,
            } => (bytes, full, complete),
        };
        let mut scanner = Scanner::new(bytes, complete);
        match read(&mut scanner, full) {
            Ok(Some(value)) if !value.is_empty() => Lookup::Found(value),
            Ok(_) => Lookup::Missing,
            Err(Stop::Malformed) => self.missing(BodyIssue::NotJson),
            Err(Stop::Incomplete) if full => self.missing(BodyIssue::TooLarge),
            Err(Stop::Incomplete) if complete => self.missing(BodyIssue::Truncated),
            Err(Stop::Incomplete) => Lookup::NeedBody,
        }
    }

    fn missing(&self, issue: BodyIssue) -> Lookup {
        if self.issue.get().is_none() {
            self.issue.set(Some(issue));
        }
        Lookup::Missing
    }

    /// The first issue a body source met, if any.
    pub(crate) fn issue(&self) -> Option<BodyIssue> {
        self.issue.get()
    }
}

/// What the host shows of the body, cut to the window.
fn window_state<'a>(request: &'a impl RequestView, max_body_bytes: usize) -> WindowState<'a> {
    match request.body() {
        Body::None => WindowState::Absent,
        _ if !is_json(request) => WindowState::NotJson,
        Body::Pending => WindowState::Pending,
        Body::Bytes { bytes, complete } => {
            let full = bytes.len() > max_body_bytes || (bytes.len() == max_body_bytes && !complete);
            WindowState::Bytes {
                bytes: bytes.get(..max_body_bytes).unwrap_or(bytes),
                full,
                complete: complete && !full,
            }
        }
    }
}

/// Whether the request's `content-type` is JSON.
fn is_json(request: &impl RequestView) -> bool {
    let Some(content_type) = request.first_header_value("content-type") else {
        return false;
    };
    let media_type = content_type
        .split(|&byte| byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(subtype) = media_type
        .get(..b"application/".len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(b"application/"))
        .and_then(|_| media_type.get(b"application/".len()..))
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case(b"json")
        || subtype
            .len()
            .checked_sub(b"+json".len())
            .and_then(|start| subtype.get(start..))
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(b"+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OwnedRequest;

    fn json_request(body: &str) -> OwnedRequest {
        OwnedRequest::new()
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(body)
    }

    #[test]
    fn json_content_types() {
        for (content_type, json) in [
            ("application/json", true),
            (" application/vnd.api+json ; q=1", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("", false),
        ] {
            let request = OwnedRequest::new()
                .header("content-type", content_type)
                .body("{}");
            assert_eq!(is_json(&request), json, "{content_type:?}");
        }
        assert!(!is_json(&OwnedRequest::new().body("{}")));
    }

    #[test]
    fn the_window_stops_at_max_body_bytes_and_is_then_final() {
        let request = json_request(r#"{"a":"0123456789"}"#);
        let window = BodyWindow::of(&request, 8);
        assert_eq!(
            window.lookup(|scanner, full| {
                assert!(full);
                scanner.skip_value().map(|()| None)
            }),
            Lookup::Missing
        );
        assert_eq!(window.issue(), Some(BodyIssue::TooLarge));
    }

    #[test]
    fn a_body_that_ends_inside_the_document_is_truncated() {
        let request = json_request(r#"{"a":"#);
        let window = BodyWindow::of(&request, 1024);
        assert_eq!(
            window.lookup(|scanner, _| scanner.skip_value().map(|()| None)),
            Lookup::Missing
        );
        assert_eq!(window.issue(), Some(BodyIssue::Truncated));
    }

    #[test]
    fn a_partial_body_needs_more_and_a_non_json_one_is_noted() {
        let partial = OwnedRequest::new()
            .header("content-type", "application/json")
            .partial_body(r#"{"a":"#);
        let window = BodyWindow::of(&partial, 1024);
        assert_eq!(
            window.lookup(|scanner, _| scanner.skip_value().map(|()| None)),
            Lookup::NeedBody
        );
        let text = OwnedRequest::new()
            .header("content-type", "text/plain")
            .body("{}");
        let window = BodyWindow::of(&text, 1024);
        assert_eq!(window.lookup(|_, _| Ok(None)), Lookup::Missing);
        assert_eq!(window.issue(), Some(BodyIssue::NotJson));
    }
}
