//! Field paths such as `services[0].affinity.keys[1].cookie`: how errors name the field they are about.

use std::fmt;

/// One step of a [`FieldPath`]: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key (`name`, `loadBalancer`).
    Key(String),
    /// A sequence index (`[2]`).
    Index(usize),
}

/// A path from a document's root to one of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The root of a document.
    #[must_use]
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended with a mapping key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended with a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// This path followed by `suffix`'s segments.
    #[must_use]
    pub fn join(&self, suffix: &FieldPath) -> Self {
        let mut segments = self.0.clone();
        segments.extend(suffix.0.iter().cloned());
        Self(segments)
    }

    /// This path followed by `suffix`, a relative path in the same dotted notation
    /// (`keys[1].cookie`), as `affinity-core` reports its validation errors.
    #[must_use]
    pub fn join_dotted(&self, suffix: &str) -> Self {
        let mut segments = self.0.clone();
        for part in suffix.split('.').filter(|part| !part.is_empty()) {
            let (name, indexes) = part
                .split_once('[')
                .map_or((part, ""), |(name, rest)| (name, rest));
            if !name.is_empty() {
                segments.push(Segment::Key(name.to_owned()));
            }
            for index in indexes.split('[') {
                let digits = index.trim_end_matches(']');
                match digits.parse::<usize>() {
                    Ok(index) => segments.push(Segment::Index(index)),
                    Err(_) if digits.is_empty() => {}
                    Err(_) => segments.push(Segment::Key(digits.to_owned())),
                }
            }
        }
        Self(segments)
    }

    /// The segments, root first.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The path without its last segment (the root stays the root).
    #[must_use]
    pub fn parent(&self) -> Self {
        let mut segments = self.0.clone();
        segments.pop();
        Self(segments)
    }

    /// Whether this is the document root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_and_indexes() {
        let path = FieldPath::root().key("services").index(0).key("affinity");
        assert_eq!(path.to_string(), "services[0].affinity");
        assert_eq!(FieldPath::root().to_string(), "(document)");
    }

    #[test]
    fn joins_dotted_suffix_from_affinity_core() {
        let path = FieldPath::root().key("services").index(2).key("affinity");
        let joined = path.join_dotted("keys[1].cookie");
        assert_eq!(joined.to_string(), "services[2].affinity.keys[1].cookie");
        assert_eq!(joined.segments().len(), 6);
        assert_eq!(path.join_dotted("").to_string(), "services[2].affinity");
        assert_eq!(
            path.join_dotted("a[0][3]").to_string(),
            "services[2].affinity.a[0][3]"
        );
    }
}
