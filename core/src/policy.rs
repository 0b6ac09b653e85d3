//! The filter's whole per-request decision, from a validated config compiled once.

use crate::config::{
    ConfigErrors, FilterConfig, HashMode, KeySource, OnMissing, parse_ttl_seconds,
};
use crate::hash::affinity_header_value_bytes;
use crate::key::{SourceKind, derive_key, normalise};
use crate::request::RequestView;

/// A validated config in the form the request path uses: built once per configuration and shared
/// by every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityPolicy {
    sources: Vec<KeySource>,
    lowercase: bool,
    max_key_length: usize,
    output_header: String,
    hash: HashMode,
    on_missing: MissingAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MissingAction {
    PassThrough,
    Reject { status: u16, body: String },
    IssueCookie { name: String, attributes: String },
}

/// What the filter does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'p> {
    /// The client sent the output header (one or more copies): remove every copy.
    pub strip_output_header: bool,
    /// What follows.
    pub outcome: Outcome<'p>,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'p> {
    /// A source matched: set the output header to `header_value`.
    Keyed {
        /// The kind of the source that matched.
        source: SourceKind,
        /// The output header's value.
        header_value: Vec<u8>,
    },
    /// No source matched and `onMissing` is `passThrough`: no output header.
    Missing,
    /// No source matched and a session cookie was issued: set the output header to
    /// `header_value` (the key the cookie will give on later requests) and add `set_cookie` as a
    /// `Set-Cookie` response header.
    Issued {
        /// The output header's value.
        header_value: Vec<u8>,
        /// The full `Set-Cookie` header value.
        set_cookie: String,
    },
    /// No source matched and `onMissing` is `reject`: answer locally.
    Reject {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: &'p str,
    },
}

impl AffinityPolicy {
    /// Validates `config` and compiles it. With `issueCookie`, when `keys` does not list that
    /// cookie as a top-level source, it is appended as an implicit last source, so the issued
    /// cookie always makes later requests stick.
    pub fn new(config: FilterConfig) -> Result<AffinityPolicy, ConfigErrors> {
        config.validate()?;
        let FilterConfig {
            mut keys,
            lowercase,
            max_key_length,
            output_header,
            hash,
            on_missing,
        } = config;
        let on_missing = match on_missing {
            OnMissing::PassThrough => MissingAction::PassThrough,
            OnMissing::Reject(reject) => MissingAction::Reject {
                status: reject.status,
                body: reject.body,
            },
            OnMissing::IssueCookie(cookie) => {
                let ttl = parse_ttl_seconds(&cookie.ttl).map_err(|message| {
                    ConfigErrors::single("onMissing.issueCookie.ttl", message)
                })?;
                let listed = keys
                    .iter()
                    .any(|key| matches!(key, KeySource::Cookie(name) if *name == cookie.name));
                if !listed {
                    keys.push(KeySource::Cookie(cookie.name.clone()));
                }
                let mut attributes = format!("; Path={}", cookie.path);
                if ttl > 0 {
                    attributes.push_str(&format!("; Max-Age={ttl}"));
                }
                if cookie.http_only {
                    attributes.push_str("; HttpOnly");
                }
                if cookie.secure {
                    attributes.push_str("; Secure");
                }
                attributes.push_str("; SameSite=");
                attributes.push_str(cookie.same_site.as_str());
                MissingAction::IssueCookie {
                    name: cookie.name,
                    attributes,
                }
            }
        };
        Ok(AffinityPolicy {
            sources: keys,
            lowercase,
            max_key_length,
            output_header: output_header.to_ascii_lowercase(),
            hash,
            on_missing,
        })
    }

    /// The output header's name, in lower case.
    pub fn output_header(&self) -> &str {
        &self.output_header
    }

    /// The key sources in the order they are tried (with the implicit issued-cookie source last,
    /// when there is one).
    pub fn sources(&self) -> &[KeySource] {
        &self.sources
    }

    /// Decides what to do with `request`. `new_session_id` is called only when a cookie must be
    /// issued; if it yields `None` (no randomness available) the request passes through unkeyed.
    pub fn evaluate(
        &self,
        request: &impl RequestView,
        new_session_id: impl FnOnce() -> Option<String>,
    ) -> Decision<'_> {
        let strip_output_header = request.first_header_value(&self.output_header).is_some();
        let outcome = match derive_key(&self.sources, request, self.lowercase) {
            Some(key) => Outcome::Keyed {
                source: key.kind,
                header_value: self.header_value(key.kind, &key.value),
            },
            None => self.on_missing(new_session_id),
        };
        Decision {
            strip_output_header,
            outcome,
        }
    }

    fn on_missing(&self, new_session_id: impl FnOnce() -> Option<String>) -> Outcome<'_> {
        match &self.on_missing {
            MissingAction::PassThrough => Outcome::Missing,
            MissingAction::Reject { status, body } => Outcome::Reject {
                status: *status,
                body,
            },
            MissingAction::IssueCookie { name, attributes } => {
                let Some(id) = new_session_id() else {
                    return Outcome::Missing;
                };
                let Some(value) = normalise(id.as_bytes(), self.lowercase) else {
                    return Outcome::Missing;
                };
                Outcome::Issued {
                    header_value: self.header_value(SourceKind::Cookie, &value),
                    set_cookie: format!("{name}={id}{attributes}"),
                }
            }
        }
    }

    fn header_value(&self, kind: SourceKind, value: &[u8]) -> Vec<u8> {
        affinity_header_value_bytes(kind.as_str(), value, self.hash, self.max_key_length)
    }
}
