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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::MODEL;
    use crate::trace::parse;
    use crate::workload::build;

    const TRACE: &str = r#"{"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}
{"timestamp": 10, "input_length": 1900, "output_length": 5, "hash_ids": [0, 1, 3, 4]}
{"timestamp": 20, "input_length": 700, "output_length": 5, "hash_ids": [0, 5]}"#;

    fn keys(config: &str) -> Vec<Option<Vec<u8>>> {
        let key = OurKey::new(config).unwrap();
        let workload = build(&parse(TRACE).unwrap(), 1);
        workload
            .requests
            .iter()
            .map(|request| {
                key.header_value(request.chat_body(MODEL, &request.messages()).as_bytes())
            })
            .collect()
    }

    #[test]
    fn the_prompt_prefix_key_follows_the_conversation() {
        let keys = keys(CONFIGS[1].1);
        assert!(keys.iter().all(Option::is_some));
        assert_eq!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
    }

    #[test]
    fn the_user_key_follows_the_user() {
        let keys = keys(CONFIGS[0].1);
        assert!(keys.iter().all(Option::is_some));
        assert_eq!(keys[0], keys[1]);
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(OurKey::new(r#"{"keys":[{"nope":1}]}"#).is_err());
    }
}
