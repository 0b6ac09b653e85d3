//! The filter's whole per-request decision, from a validated config compiled once.
//!
//! A request is evaluated at its headers; when a body source must see the body first, the
//! outcome is [`Outcome::NeedBody`] and the host evaluates again as the body arrives (the same
//! request view, now with [`Body::Bytes`](crate::Body)), until the outcome is anything else. The
//! window is final at `maxBodyBytes`, so the host never buffers more than that.

use crate::body::BodyIssue;
use crate::config::{ConfigErrors, FilterConfig, HashMode, OnMissing, parse_ttl_seconds};
use crate::hash::affinity_header_value_bytes;
use crate::key::{Derivation, KeyOptions, derive_key, normalise};
use crate::request::RequestView;
use crate::sources::{KeySource, SourceKind};

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
    max_body_bytes: usize,
    reads_body: bool,
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
    /// A body source looked at the body and found no key in it, for this reason (counted once
    /// the outcome is final).
    pub body_issue: Option<BodyIssue>,
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
    /// A body source needs (more of) the body: hold the request and evaluate again when more of
    /// the body has arrived.
    NeedBody,
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
        let reads_body = config.reads_body();
        let FilterConfig {
            mut keys,
            lowercase,
            max_key_length,
            output_header,
            hash,
            on_missing,
            max_body_bytes,
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
            max_body_bytes,
            reads_body,
        })
    }

    /// Whether a source reads the request body (the host must then be able to pause a request
    /// at its headers).
    pub fn reads_body(&self) -> bool {
        self.reads_body
    }

    /// At most how many body bytes the body sources read.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
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
        let options = KeyOptions {
            lowercase: self.lowercase,
            max_body_bytes: self.max_body_bytes,
        };
        let derived = derive_key(&self.sources, request, options);
        let outcome = match derived.derivation {
            Derivation::Keyed(key) => Outcome::Keyed {
                source: key.kind,
                header_value: self.header_value(key.kind, &key.value),
            },
            Derivation::NeedBody => Outcome::NeedBody,
            Derivation::Missing => self.on_missing(new_session_id),
        };
        Decision {
            strip_output_header,
            outcome,
            body_issue: derived.body_issue,
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
