//! A small, strict JSON reader (RFC 8259) for the filter configuration.
//!
//! The data plane parses its config with this instead of serde_json: serde_json's deserializer
//! (with float parsing and formatting) would more than double the filter's `.wasm`. The values it
//! produces are decoded into [`super::FilterConfig`] by `decode`, which names the field of every
//! error; tests check both agree with serde on the same documents.

use std::fmt::Write as _;

/// Nesting deeper than this is refused (a config is a few levels deep; this bounds recursion).
const MAX_DEPTH: usize = 64;

/// A parsed JSON value. Numbers keep their literal text: the decoder checks them against the
/// integer type of their field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order (duplicates are refused while parsing).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// What kind of value this is, for "invalid type" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(value) => format!("boolean `{value}`"),
            Value::Number(text) => format!("number `{text}`"),
            Value::String(text) => format!("string {text:?}"),
            Value::Array(_) => "an array".to_owned(),
            Value::Object(_) => "an object".to_owned(),
        }
    }
}

/// Parses one JSON document; the error says what was expected and at which line and column.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        format!(
            "the configuration is not UTF-8 (at byte {})",
            error.valid_up_to()
        )
    })?;
    let mut parser = Parser {
        text: text.as_bytes(),
        position: 0,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.position < parser.text.len() {
        return Err(parser.error("trailing characters after the JSON document"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    position: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> String {
        let before = &self.text[..self.position.min(self.text.len())];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |newline| newline + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        let mut error = message.to_owned();
        let _ = write!(error, " at line {line} column {column}");
        error
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn expect_literal(&mut self, literal: &str, value: Value) -> Result<Value, String> {
        if self.text[self.position..].starts_with(literal.as_bytes()) {
            self.position += literal.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of input, expected a JSON value")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.expect_literal("true", Value::Bool(true)),
            Some(b'f') => self.expect_literal("false", Value::Bool(false)),
            Some(b'n') => self.expect_literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.position += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error(if self.peek().is_none() {
                    "unexpected end of input, expected a member name"
                } else {
                    "expected a member name in double quotes"
                }));
            }
            let name_position = self.position;
            let name = self.string()?;
            if members.iter().any(|(existing, _)| *existing == name) {
                self.position = name_position;
                return Err(self.error(&format!("duplicate field `{name}`")));
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.position += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            members.push((name, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.error("unexpected end of input, expected `,` or `}`")),
                Some(_) => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("unexpected end of input, expected `,` or `]`")),
                Some(_) => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as text.
    fn number(&mut self) -> Result<Value, String> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        match self.peek() {
            Some(b'0') => self.position += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.position += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        Ok(Value::Number(
            String::from_utf8_lossy(&self.text[start..self.position]).into_owned(),
        ))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.position += 1;
        let mut out = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unexpected end of input inside a string"));
            };
            match byte {
                b'"' => {
                    self.position += 1;
                    // Input is UTF-8 and escapes produce UTF-8, so this cannot fail; map anyway.
                    return String::from_utf8(out)
                        .map_err(|_| self.error("invalid UTF-8 in a string"));
                }
                b'\\' => {
                    self.position += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape in a string")),
                    };
                    self.position += 1;
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut buffer).as_bytes());
                }
                0x00..=0x1f => return Err(self.error("control character in a string (escape it)")),
                _ => {
                    out.push(byte);
                    self.position += 1;
                }
            }
        }
    }

    /// At the `u` of `\uXXXX`: decodes it (and a following low surrogate); leaves the position on
    /// the last hex digit.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text[self.position + 1..].starts_with(b"\\u") {
                return Err(self.error("unpaired surrogate in a \\u escape"));
            }
            self.position += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("unpaired surrogate in a \\u escape"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate in a \\u escape"))
    }

    /// At a `u`: reads the four hex digits after it.
    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.position + 1..self.position + 5)
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        let mut code = 0;
        for &digit in digits {
            let value = (digit as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + value;
        }
        self.position += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, parse};

    fn ok(text: &str) -> Value {
        parse(text.as_bytes()).unwrap()
    }

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_every_kind_of_value() {
        assert_eq!(
            ok(r#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#),
            Value::Object(vec![
                (
                    "a".into(),
                    Value::Array(vec![
                        Value::Number("1".into()),
                        Value::Number("-2.5e3".into()),
                        Value::Bool(true),
                        Value::Bool(false),
                        Value::Null,
                        Value::String("x".into()),
                    ])
                ),
                ("b".into(), Value::Object(vec![])),
            ])
        );
        assert_eq!(ok("[]"), Value::Array(vec![]));
        assert_eq!(ok("0"), Value::Number("0".into()));
    }

    #[test]
    fn decodes_string_escapes() {
        assert_eq!(
            ok(r#""a\"b\\c\/d\b\f\n\r\t""#),
            Value::String("a\"b\\c/d\u{8}\u{c}\n\r\t".into())
        );
        assert_eq!(
            ok(r#""\u00e9\u20AC\ud83d\ude00""#),
            Value::String("é€😀".into())
        );
        assert_eq!(ok("\"é€😀\""), Value::String("é€😀".into()));
    }

    #[test]
    fn refuses_malformed_documents_with_a_position() {
        let cases = [
            ("", "unexpected end of input"),
            ("{", "unexpected end of input"),
            (r#"{"a": 1"#, "unexpected end of input"),
            (r#"{"a" 1}"#, "expected `:`"),
            (r#"{"a": 1,}"#, "member name"),
            (r#"{a: 1}"#, "member name"),
            ("[1 2]", "expected `,` or `]`"),
            ("[1,]", "expected a JSON value"),
            ("tru", "expected a JSON value"),
            ("01", "trailing characters"),
            ("1.", "invalid number"),
            ("-", "invalid number"),
            ("1e", "invalid number"),
            ("+1", "expected a JSON value"),
            (r#""abc"#, "inside a string"),
            ("\"a\u{1}b\"", "control character"),
            (r#""\x""#, "invalid escape"),
            (r#""\u12""#, "invalid \\u escape"),
            (r#""\ud800""#, "unpaired surrogate"),
            (r#""\ud800\u0041""#, "unpaired surrogate"),
            (r#""\udc00""#, "unpaired surrogate"),
            (r#"{"a": 1, "a": 2}"#, "duplicate field `a`"),
            ("{} {}", "trailing characters"),
        ];
        for (text, message) in cases {
            let error = err(text);
            assert!(error.contains(message), "{text:?}: {error}");
            assert!(error.contains(" at line "), "{text:?}: {error}");
        }
        assert_eq!(
            err("{\n  \"a\": x\n}"),
            "expected a JSON value at line 2 column 8"
        );
        assert!(parse(b"\"\xff\"").unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(err(&deep).contains("nested too deeply"));
        let fine = format!("{}{}", "[".repeat(60), "]".repeat(60));
        parse(fine.as_bytes()).unwrap();
    }
}
