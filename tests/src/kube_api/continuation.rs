//! `continue` tokens of paginated lists: opaque to clients (hex text), they carry the resourceVersion of the
//! list's first page and the key (namespace, name) of the last object sent, so the next page starts after it.

/// Where the next page of a list starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The resourceVersion the first page reported; a token older than the compacted history is expired.
    pub resource_version: u64,
    /// Namespace of the last object sent ("" for cluster-scoped kinds).
    pub namespace: String,
    /// Name of the last object sent.
    pub name: String,
}

impl Continuation {
    /// The token sent as `metadata.continue`.
    pub fn encode(&self) -> String {
        let plain = format!(
            "{}\n{}\n{}",
            self.resource_version, self.namespace, self.name
        );
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a token back; the error says why it is not one this server issued.
    pub fn decode(token: &str) -> Result<Continuation, String> {
        let invalid = || format!("continue key is not valid: {token:?}");
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return Err(invalid());
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| invalid())?;
        let plain = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = plain.splitn(3, '\n');
        let (Some(rv), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Continuation {
            resource_version: rv.parse().map_err(|_| invalid())?,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_opaque() {
        let position = Continuation {
            resource_version: 42,
            namespace: "shop".into(),
            name: "web-abc12".into(),
        };
        let token = position.encode();
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
        assert!(!token.contains("shop"));
        assert_eq!(Continuation::decode(&token).unwrap(), position);
    }

    #[test]
    fn cluster_scoped_positions_have_an_empty_namespace() {
        let position = Continuation {
            resource_version: 7,
            namespace: String::new(),
            name: "shop".into(),
        };
        assert_eq!(Continuation::decode(&position.encode()).unwrap(), position);
    }

    #[test]
    fn tokens_this_server_did_not_issue_are_refused() {
        for token in ["xyz", "abc", "3432", "ff00ff", "é0"] {
            let error = Continuation::decode(token).unwrap_err();
            assert!(
                error.contains("continue key is not valid"),
                "{token}: {error}"
            );
        }
    }
}
