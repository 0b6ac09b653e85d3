//! The filter's configuration schema: the JSON an Envoy `WasmPlugin` / `envoy.filters.http.wasm`
//! `configuration` carries, and the YAML the xds-agent embeds.
//!
//! One decoder reads it: [`FilterConfig::from_json`] (a small JSON reader and a decoder that name
//! each error's field path), which the filter runs; the xds-agent hands it the `affinity` value it
//! read from YAML, so both accept exactly the same documents. The serde `Serialize` derives only
//! write the canonical JSON the agent ships over ECDS.
//!
//! Field names are binding (configs written today must keep working); every field except `keys`
//! has a default, so `{"keys": [{"header": "x-user-id"}]}` is a complete config.

pub(crate) mod decode;
mod errors;
pub(crate) mod json;
mod ttl;
pub(crate) mod validate;

pub use errors::{ConfigError, ConfigErrors};
pub use ttl::parse_ttl_seconds;
pub use validate::{MAX_BODY_BYTES_LIMIT, MIN_BODY_BYTES};

pub use crate::sources::{KeySource, PromptPrefix, PromptScope, SourceIp};

use serde::Serialize;

/// The default for [`FilterConfig::max_key_length`].
pub const DEFAULT_MAX_KEY_LENGTH: usize = 256;
/// The default for [`FilterConfig::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 262_144;
/// The default for [`FilterConfig::output_header`].
pub const DEFAULT_OUTPUT_HEADER: &str = "x-affinity-key";

/// The complete filter configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterConfig {
    /// Key sources, tried in order; the first one present wins. Must not be empty.
    pub keys: Vec<KeySource>,
    /// Fold ASCII letters of the key to lower case before hashing (other bytes are kept as is).
    pub lowercase: bool,
    /// In `raw` mode, values longer than this many bytes are sent hashed instead (never truncated).
    pub max_key_length: usize,
    /// The request header the filter writes the key to (and strips from every client request).
    pub output_header: String,
    /// How the key is written to `output_header`.
    pub hash: HashMode,
    /// What happens to a request none of the `keys` matches.
    pub on_missing: OnMissing,
    /// How many bytes of a JSON request body the body sources read at most.
    pub max_body_bytes: usize,
}

fn default_output_header() -> String {
    DEFAULT_OUTPUT_HEADER.to_owned()
}

/// How the key is written to the output header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HashMode {
    /// 16 lower-case hex digits of xxHash64 (seed 0) of `"<source kind>:<value>"`.
    #[default]
    Xxh64,
    /// The normalised value itself (hashed as `xxh64` when longer than `maxKeyLength` or when it
    /// holds bytes a header value cannot carry).
    Raw,
}

/// What happens to a request none of the key sources matches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnMissing {
    /// Forward without the output header: Envoy's load balancer picks a host.
    #[default]
    PassThrough,
    /// Answer locally with this status and body.
    Reject(Reject),
    /// Generate a random session id, use it as this request's cookie key, and set the cookie on
    /// the response so the next request carries it.
    IssueCookie(IssueCookie),
}

/// `onMissing.reject`: a local reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    /// HTTP status, 400–599.
    pub status: u16,
    /// Response body (sent as `text/plain`).
    pub body: String,
}

impl Default for Reject {
    fn default() -> Self {
        Reject {
            status: default_reject_status(),
            body: default_reject_body(),
        }
    }
}

fn default_reject_status() -> u16 {
    400
}

fn default_reject_body() -> String {
    "missing affinity key\n".to_owned()
}

/// `onMissing.issueCookie`: the cookie a request without a key is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueCookie {
    /// Cookie name (an RFC 6265 token).
    pub name: String,
    /// Lifetime as a protobuf-JSON duration, e.g. `"3600s"`; `"0s"` issues a session cookie.
    pub ttl: String,
    /// Cookie `Path` attribute; must start with `/`.
    pub path: String,
    /// Add the `HttpOnly` attribute.
    pub http_only: bool,
    /// Add the `Secure` attribute (required with `sameSite: None`).
    pub secure: bool,
    /// The `SameSite` attribute.
    pub same_site: SameSite,
}

impl Default for IssueCookie {
    fn default() -> Self {
        IssueCookie {
            name: default_cookie_name(),
            ttl: default_cookie_ttl(),
            path: default_cookie_path(),
            http_only: true,
            secure: false,
            same_site: SameSite::default(),
        }
    }
}

fn default_cookie_name() -> String {
    "_srv_id".to_owned()
}

fn default_cookie_ttl() -> String {
    "3600s".to_owned()
}

fn default_cookie_path() -> String {
    "/".to_owned()
}

/// The `SameSite` cookie attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    #[default]
    Lax,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl FilterConfig {
    /// A config with the given sources and every other field at its default.
    pub fn with_keys(keys: Vec<KeySource>) -> FilterConfig {
        FilterConfig {
            keys,
            lowercase: false,
            max_key_length: DEFAULT_MAX_KEY_LENGTH,
            output_header: default_output_header(),
            hash: HashMode::default(),
            on_missing: OnMissing::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Whether a source (or a composite's part) reads the request body.
    pub fn reads_body(&self) -> bool {
        fn reads(source: &KeySource) -> bool {
            match source {
                KeySource::JsonBody(_) | KeySource::PromptPrefix(_) => true,
                KeySource::Composite(parts) => parts.iter().any(reads),
                _ => false,
            }
        }
        self.keys.iter().any(reads)
    }

    /// Parses JSON and validates it. A syntax error (reported with its line and column) or a
    /// schema error (unknown field, wrong type; reported with its path) stops parsing and is
    /// reported alone; semantic errors are all reported, each with its path.
    pub fn from_json(bytes: &[u8]) -> Result<FilterConfig, ConfigErrors> {
        let document = json::parse(bytes).map_err(|message| ConfigErrors::single("", message))?;
        let config = decode::filter_config(&document).map_err(|error| ConfigErrors(vec![error]))?;
        config.validate()?;
        Ok(config)
    }

    /// Semantic checks only (the types are already right): every problem found, each with the
    /// path of the field, e.g. `keys[1].cookie: must not be empty`.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let errors = validate::collect_errors(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Canonical JSON: every field spelled out, in declaration order, no whitespace. Equal
    /// configs give equal strings, so it can be content-hashed and shipped over ECDS.
    pub fn to_json(&self) -> String {
        // These types serialize infallibly (no maps, no custom Serialize impls), so the error arm
        // is unreachable; it exists only because serde_json's signature is fallible.
        serde_json::to_string(self).unwrap_or_default()
    }
}
