//! Semantic validation: collects every problem, each with the path of its field.

use super::{ConfigError, FilterConfig, OnMissing, SameSite, parse_ttl_seconds};

/// The largest `maxKeyLength` accepted: a raw key longer than this would be an oversized header.
pub(super) const MAX_KEY_LENGTH_LIMIT: usize = 8192;
/// The smallest `maxBodyBytes` accepted.
pub const MIN_BODY_BYTES: usize = 1024;
/// The largest `maxBodyBytes` accepted: Envoy buffers this much per request that is read.
pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Headers the filter must not strip and overwrite: the ones key sources read, and those that
/// frame or route the request.
const RESERVED_OUTPUT_HEADERS: &[&str] = &[
    "cookie",
    "x-forwarded-for",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
];

pub(super) fn collect_errors(config: &FilterConfig) -> Vec<ConfigError> {
    let mut errors = Errors(Vec::new());
    if config.keys.is_empty() {
        errors.push("keys", "must list at least one key source");
    }
    for (index, source) in config.keys.iter().enumerate() {
        crate::sources::validate(
            source,
            &format!("keys[{index}]"),
            &config.output_header,
            &mut errors,
        );
    }
    if !(MIN_BODY_BYTES..=MAX_BODY_BYTES_LIMIT).contains(&config.max_body_bytes) {
        errors.push(
            "maxBodyBytes",
            format!(
                "must be between {MIN_BODY_BYTES} and {MAX_BODY_BYTES_LIMIT}, got {}",
                config.max_body_bytes
            ),
        );
    }
    if config.max_key_length == 0 || config.max_key_length > MAX_KEY_LENGTH_LIMIT {
        errors.push(
            "maxKeyLength",
            format!(
                "must be between 1 and {MAX_KEY_LENGTH_LIMIT}, got {}",
                config.max_key_length
            ),
        );
    }
    if let Some(problem) = header_name_problem(&config.output_header) {
        errors.push("outputHeader", problem);
    } else if config.output_header.starts_with(':') {
        errors.push("outputHeader", "must not be a pseudo-header");
    } else if RESERVED_OUTPUT_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(&config.output_header))
    {
        errors.push(
            "outputHeader",
            format!(
                "`{}` is read by a key source or frames the request; the filter strips it from every request",
                config.output_header
            ),
        );
    }
    match &config.on_missing {
        OnMissing::PassThrough => {}
        OnMissing::Reject(reject) => {
            if !(400..=599).contains(&reject.status) {
                errors.push(
                    "onMissing.reject.status",
                    format!(
                        "must be an HTTP error status (400-599), got {}",
                        reject.status
                    ),
                );
            }
        }
        OnMissing::IssueCookie(cookie) => {
            if let Some(problem) = token_problem(&cookie.name) {
                errors.push("onMissing.issueCookie.name", problem);
            }
            if let Err(problem) = parse_ttl_seconds(&cookie.ttl) {
                errors.push("onMissing.issueCookie.ttl", problem);
            }
            if !cookie.path.starts_with('/') {
                errors.push("onMissing.issueCookie.path", "must start with `/`");
            } else if cookie
                .path
                .bytes()
                .any(|byte| byte == b';' || byte.is_ascii_control() || !byte.is_ascii())
            {
                errors.push(
                    "onMissing.issueCookie.path",
                    "must not contain `;`, control or non-ASCII characters",
                );
            }
            if cookie.same_site == SameSite::None && !cookie.secure {
                errors.push(
                    "onMissing.issueCookie.sameSite",
                    "`None` requires `secure: true` (browsers drop such cookies otherwise)",
                );
            }
        }
    }
    errors.0
}

/// The problems found so far.
pub(crate) struct Errors(Vec<ConfigError>);

impl Errors {
    /// Adds a problem with the field at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// A header name: an RFC 9110 token, optionally behind a `:` (pseudo-headers such as `:authority`).
pub(crate) fn header_name_problem(name: &str) -> Option<String> {
    token_problem(name.strip_prefix(':').unwrap_or(name))
}

/// An RFC 9110 token (which is also what RFC 6265 requires of a cookie name).
pub(crate) fn token_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    let is_tchar = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if name.bytes().all(is_tchar) {
        None
    } else {
        Some(format!(
            "`{name}` is not a valid name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ))
    }
}
