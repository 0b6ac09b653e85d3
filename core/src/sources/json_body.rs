//! `{"jsonBody": "/metadata/session_id"}`: the value at an RFC 6901 JSON pointer in a JSON
//! request body. A string is the key (unescaped); a number or boolean its JSON text; an object,
//! array, `null` or no value is missing.
//!
//! The body is read in order as it arrives and the key is decided as soon as the pointer's value
//! has been read whole, or its containing object has ended without it. When an object names a
//! member twice, the first one counts (what a reader that stops early can know).

use serde::{Serialize, Serializer};

use super::{Extraction, KeySource, found};
use crate::body::{BodyRead, Lookup};
use crate::config::decode::{Decoded, string};
use crate::config::json::Value;
use crate::config::validate::Errors;
use crate::json_scan::{Flow, Scanner};
use crate::request::RequestView;

/// A JSON pointer as written, parsed once (when the configuration is read, not per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Result<Vec<String>, String>,
}

impl JsonPointer {
    /// Parses `text`; a malformed pointer is kept with its problem, which validation reports.
    pub fn new(text: impl Into<String>) -> JsonPointer {
        let text = text.into();
        let tokens = parse_pointer(&text);
        JsonPointer { text, tokens }
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Written as the pointer's text.
impl Serialize for JsonPointer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    string(inner, path).map(|text| KeySource::JsonBody(JsonPointer::new(text)))
}

pub(crate) fn validate(pointer: &JsonPointer, path: &str, errors: &mut Errors) {
    if let Err(problem) = &pointer.tokens {
        errors.push(path, problem.clone());
    }
}

pub(crate) fn value<R: RequestView>(
    pointer: &JsonPointer,
    extraction: &Extraction<'_, R>,
) -> Lookup {
    let Ok(tokens) = &pointer.tokens else {
        return Lookup::Missing;
    };
    match extraction
        .body
        .lookup(|scanner, _| read_at(scanner, tokens))
    {
        Lookup::Found(value) => found(Some(value), extraction.lowercase),
        other => other,
    }
}

/// The reference tokens of a pointer (`/a~1b/0` → `a/b`, `0`). The whole document (`""`) is
/// refused: a request body is an object, never a key.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer to a field: it must start with `/` (RFC 6901), e.g. `/user`"
        ));
    };
    rest.split('/')
        .map(|token| {
            let mut unescaped = String::with_capacity(token.len());
            let mut characters = token.chars();
            while let Some(character) = characters.next() {
                if character != '~' {
                    unescaped.push(character);
                    continue;
                }
                match characters.next() {
                    Some('0') => unescaped.push('~'),
                    Some('1') => unescaped.push('/'),
                    _ => {
                        return Err(format!(
                            "`{pointer}`: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                        ));
                    }
                }
            }
            Ok(unescaped)
        })
        .collect()
}

/// Reads the value at `tokens` from the value under the scanner.
fn read_at(scanner: &mut Scanner<'_>, tokens: &[String]) -> BodyRead {
    let Some((token, rest)) = tokens.split_first() else {
        return match scanner.peek()? {
            b'"' => {
                let mut text = Vec::new();
                scanner.string(&mut text)?;
                Ok(Some(text))
            }
            b'{' | b'[' | b'n' => scanner.skip_value().map(|()| None),
            _ => scanner.raw_value().map(|raw| Some(raw.to_vec())),
        };
    };
    let mut result = None;
    match scanner.peek()? {
        b'{' => scanner.object(|scanner, name| {
            if name == token.as_bytes() {
                result = read_at(scanner, rest)?;
                Ok(Flow::Done)
            } else {
                scanner.skip_value().map(|()| Flow::Next)
            }
        })?,
        b'[' => {
            let Some(wanted) = array_index(token) else {
                return scanner.skip_value().map(|()| None);
            };
            scanner.array(|scanner, index| {
                if index == wanted {
                    result = read_at(scanner, rest)?;
                    Ok(Flow::Done)
                } else {
                    scanner.skip_value().map(|()| Flow::Next)
                }
            })?
        }
        _ => scanner.skip_value()?,
    }
    Ok(result)
}

/// An array index token: digits without a leading zero (`-`, past the end, names none).
fn array_index(token: &str) -> Option<usize> {
    let valid = !token.is_empty()
        && token.bytes().all(|byte| byte.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    valid.then(|| token.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_scan::Stop;

    fn read(body: &str, pointer: &str, complete: bool) -> BodyRead {
        let tokens = parse_pointer(pointer).unwrap();
        read_at(&mut Scanner::new(body.as_bytes(), complete), &tokens)
    }

    fn text(value: &str) -> BodyRead {
        Ok(Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn pointers_parse_as_rfc_6901_says() {
        assert_eq!(parse_pointer("/user").unwrap(), ["user"]);
        assert_eq!(parse_pointer("/a~1b/~0c/0").unwrap(), ["a/b", "~c", "0"]);
        assert_eq!(parse_pointer("/").unwrap(), [""]);
        assert!(parse_pointer("").is_err());
        assert!(parse_pointer("user").is_err());
        assert!(parse_pointer("/a~2").is_err());
        assert!(parse_pointer("/a~").is_err());
    }

    #[test]
    fn strings_numbers_and_booleans_are_keys_other_values_are_not() {
        let body = r#"{"s":"a\u0062c","n":-12.5e1,"t":true,"o":{},"a":[1],"z":null}"#;
        assert_eq!(read(body, "/s", true), text("abc"));
        assert_eq!(read(body, "/n", true), text("-12.5e1"));
        assert_eq!(read(body, "/t", true), text("true"));
        for absent in ["/o", "/a", "/z", "/missing", "/s/deeper", "/a/x"] {
            assert_eq!(read(body, absent, true), Ok(None), "{absent}");
        }
    }

    #[test]
    fn nested_members_array_indices_and_escaped_names() {
        let body =
            r#"{"metadata":{"x":[0,{"y":1}],"session_id":"s-1"},"a/b":{"~":"t"},"list":["p","q"]}"#;
        assert_eq!(read(body, "/metadata/session_id", true), text("s-1"));
        assert_eq!(read(body, "/metadata/x/1/y", true), text("1"));
        assert_eq!(read(body, "/a~1b/~0", true), text("t"));
        assert_eq!(read(body, "/list/1", true), text("q"));
        assert_eq!(read(body, "/list/2", true), Ok(None));
        assert_eq!(read(body, "/list/01", true), Ok(None));
        assert_eq!(read(body, "/list/-", true), Ok(None));
    }

    #[test]
    fn the_value_is_known_before_the_body_ends_and_absence_when_its_object_closes() {
        let body = r#"{"user":"alice","messages":[{"role":"user","content":"hel"#;
        assert_eq!(read(body, "/user", false), text("alice"));
        assert_eq!(read(body, "/messages/0/role", false), text("user"));
        assert_eq!(read(body, "/later", false), Err(Stop::Incomplete));
        let closed = r#"{"metadata":{"a":1},"messages":[{"content":"hel"#;
        assert_eq!(read(closed, "/metadata/session_id", false), Ok(None));
    }

    #[test]
    fn the_first_of_two_members_with_one_name_counts() {
        assert_eq!(
            read(r#"{"u":"first","u":"second"}"#, "/u", true),
            text("first")
        );
    }

    #[test]
    fn malformed_bodies_stop_as_malformed() {
        assert_eq!(read("{user: 1}", "/user", true), Err(Stop::Malformed));
        assert_eq!(read(r#"{"a" 1}"#, "/user", true), Err(Stop::Malformed));
        assert_eq!(read("not json", "/user", true), Err(Stop::Malformed));
    }
}
