//! Positions of every value of a YAML document, by field path, so that errors found after
//! deserialization (duplicate names, dangling references, affinity-core validation) can name
//! the line and column of the value they are about.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::path::{FieldPath, Segment};

/// 1-based line and column of a value in its file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineColumn {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// The position of every value of one document, keyed by field path.
#[derive(Clone, Debug, Default)]
pub struct PositionIndex {
    by_path: BTreeMap<FieldPath, LineColumn>,
}

impl PositionIndex {
    /// Index `text`, one YAML document whose first line is line `first_line` of its file.
    ///
    /// # Errors
    /// The YAML parser's error when `text` is not well-formed YAML.
    pub fn build(text: &str, first_line: u64) -> Result<Self, serde_saphyr::Error> {
        let root: Spanned<Node> = serde_saphyr::from_str(text)?;
        let mut index = Self::default();
        index.insert(FieldPath::root(), &root, first_line.saturating_sub(1));
        Ok(index)
    }

    fn insert(&mut self, path: FieldPath, node: &Spanned<Node>, line_offset: u64) {
        let at = LineColumn {
            line: node.referenced.line() + line_offset,
            column: node.referenced.column(),
        };
        for (segment, child) in &node.value.children {
            let child_path = match segment {
                Segment::Key(key) => path.key(key),
                Segment::Index(index) => path.index(*index),
            };
            self.insert(child_path, child, line_offset);
        }
        self.by_path.insert(path, at);
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    #[must_use]
    pub fn locate(&self, path: &FieldPath) -> Option<LineColumn> {
        let mut current = path.clone();
        loop {
            if let Some(at) = self.by_path.get(&current) {
                return Some(*at);
            }
            if current.is_root() {
                return None;
            }
            current = current.parent();
        }
    }

    /// The field path of the value at (or nearest after, on the same line) `at`, or else of the
    /// last value before it: used to name the field of a parser error that only has a position.
    #[must_use]
    pub fn path_at(&self, at: LineColumn) -> Option<FieldPath> {
        let same_line = self
            .by_path
            .iter()
            .filter(|(_, pos)| pos.line == at.line && pos.column >= at.column)
            .min_by_key(|(path, pos)| (pos.column, std::cmp::Reverse(path.segments().len())));
        if let Some((path, _)) = same_line {
            return Some(path.clone());
        }
        self.by_path
            .iter()
            .filter(|(_, pos)| **pos <= at)
            .max_by_key(|(path, pos)| (**pos, path.segments().len()))
            .map(|(path, _)| path.clone())
    }

    /// Whether the document's root mapping has `key`.
    #[must_use]
    pub fn has_root_key(&self, key: &str) -> bool {
        self.by_path.contains_key(&FieldPath::root().key(key))
    }

    /// Whether the document has no values at all (empty, or only comments).
    #[must_use]
    pub fn is_empty_document(&self) -> bool {
        self.by_path.len() <= 1
    }
}

/// A YAML value reduced to its structure: children with their positions.
#[derive(Debug, Default)]
struct Node {
    children: Vec<(Segment, Spanned<Node>)>,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A mapping key of any scalar type, kept as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As a string: keys like `on` / `yes` stay text (YAML 1.1 would make them booleans), as
        // the typed structs read them.
        deserializer.deserialize_string(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = KeyText;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(String::new()))
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut children = Vec::new();
        while let Some(child) = seq.next_element::<Spanned<Node>>()? {
            children.push((Segment::Index(children.len()), child));
        }
        Ok(Node { children })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut children = Vec::new();
        while let Some(KeyText(key)) = map.next_key::<KeyText>()? {
            let child = map.next_value::<Spanned<Node>>()?;
            children.push((Segment::Key(key), child));
        }
        Ok(Node { children })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "services:\n  - name: web\n    affinity:\n      keys: [{header: x-user}, {cookie: s}]\n";

    #[test]
    fn locates_nested_values_with_line_offset() {
        let index = PositionIndex::build(DOC, 10).unwrap();
        let name = FieldPath::root().key("services").index(0).key("name");
        assert_eq!(
            index.locate(&name),
            Some(LineColumn {
                line: 11,
                column: 11
            })
        );
        let cookie = FieldPath::root()
            .key("services")
            .index(0)
            .join_dotted("affinity.keys[1].cookie");
        let at = index.locate(&cookie).unwrap();
        assert_eq!(at.line, 13);
        assert!(at.column > 30, "flow mapping value column: {at:?}");
    }

    #[test]
    fn missing_path_falls_back_to_ancestor() {
        let index = PositionIndex::build(DOC, 1).unwrap();
        let missing = FieldPath::root().key("services").index(0).key("endpoints");
        let service = FieldPath::root().key("services").index(0);
        assert_eq!(index.locate(&missing), index.locate(&service));
    }

    #[test]
    fn yaml_11_boolean_words_stay_keys_and_flow_items_have_positions() {
        let index =
            PositionIndex::build("retries: {attempts: 2, on: [reset, teapot, 999]}\n", 1).unwrap();
        let teapot = FieldPath::root().key("retries").key("on").index(1);
        assert_eq!(
            index.locate(&teapot),
            Some(LineColumn {
                line: 1,
                column: 36
            })
        );
    }

    #[test]
    fn finds_path_from_position() {
        let index = PositionIndex::build(DOC, 1).unwrap();
        let path = index
            .path_at(LineColumn {
                line: 2,
                column: 11,
            })
            .unwrap();
        assert_eq!(path.to_string(), "services[0].name");
        let path = index.path_at(LineColumn { line: 2, column: 5 }).unwrap();
        assert_eq!(path.to_string(), "services[0]");
        assert!(index.has_root_key("services"));
        assert!(!index.has_root_key("kind"));
    }
}
