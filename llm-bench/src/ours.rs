//! Our keys, derived by the filter's own core (`affinity-core`): the `x-affinity-key` value the
//! filter writes for a chat request body, for each benchmarked key configuration.

use affinity_core::{AffinityPolicy, FilterConfig, Outcome, OwnedRequest};

/// The benchmarked key configurations: `(name, filter config JSON)`.
pub const CONFIGS: [(&str, &str); 2] = [
    ("json-body-user", r#"{"keys":[{"jsonBody":"/user"}]}"#),
    (
        "prompt-prefix-conversation",
        r#"{"keys":[{"promptPrefix":{"scope":"conversation"}}]}"#,
    ),
];

/// One compiled key configuration.
pub struct OurKey {
    policy: AffinityPolicy,
}

impl OurKey {
    /// Compiles a filter configuration.
    ///
    /// # Errors
    /// The configuration's errors, as text.
    pub fn new(config_json: &str) -> Result<Self, String> {
        let config = FilterConfig::from_json(config_json.as_bytes()).map_err(|e| e.to_string())?;
        let policy = AffinityPolicy::new(config).map_err(|e| e.to_string())?;
        Ok(Self { policy })
    }

    /// The `x-affinity-key` value for a `POST /v1/chat/completions` with this JSON body, or
    /// `None` when the filter finds no key.
    #[must_use]
    pub fn header_value(&self, body: &[u8]) -> Option<Vec<u8>> {
        let request = OwnedRequest::new()
            .header(":method", "POST")
            .header(":path", "/v1/chat/completions")
            .header("content-type", "application/json")
            .body(body);
        match self.policy.evaluate(&request, || None).outcome {
            Outcome::Keyed { header_value, .. } => Some(header_value),
            _ => None,
        }
    }
}
