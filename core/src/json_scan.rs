//! A JSON scanner over the first bytes of a request body, for the body key sources.
//!
//! It never builds a document: it walks the bytes once, in order, and the caller decides at each
//! object member or array element whether to read the value, skip it, or stop. That is what lets
//! the filter decide as soon as a key is known, on a body that has only partly arrived. Every read
//! ends in one of three ways: a value, [`Stop::Incomplete`] (the bytes end before the value does:
//! more body may tell) or [`Stop::Malformed`] (no JSON body can start like this). Strings are
//! unescaped (`\n`, `\u00e9`, surrogate pairs; a lone surrogate becomes U+FFFD), so two clients
//! that escape the same text differently give the same bytes. Nesting deeper than [`MAX_DEPTH`]
//! counts as malformed, so hostile input cannot exhaust the stack. Indexing is checked
//! everywhere: no input panics.

/// How a read stopped short of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes end inside the value.
    Incomplete,
    /// Not JSON.
    Malformed,
}

/// The result of a read.
pub(crate) type Scanned<T> = Result<T, Stop>;

/// Whether to go on to the next member or element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next one.
    Next,
    /// Stop here (the rest of the container is not read).
    Done,
}

/// Deeper nesting is treated as malformed.
pub(crate) const MAX_DEPTH: usize = 64;

/// Where unescaped string bytes go.
pub(crate) trait Sink {
    /// Appends a run of bytes.
    fn write(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that drops everything (for skipping strings).
pub(crate) struct Discard;

impl Sink for Discard {
    fn write(&mut self, _bytes: &[u8]) {}
}

/// A cursor over the bytes of one JSON text (or its beginning).
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
    /// The bytes are the whole text: a number that reaches the end is finished, not cut.
    complete: bool,
    depth: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner over `bytes`; `complete` says no more bytes will follow.
    pub(crate) fn new(bytes: &'a [u8], complete: bool) -> Scanner<'a> {
        Scanner {
            bytes,
            position: 0,
            complete,
            depth: 0,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.position) {
            self.position += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Scanned<u8> {
        self.skip_whitespace();
        self.bytes
            .get(self.position)
            .copied()
            .ok_or(Stop::Incomplete)
    }

    fn next_byte(&mut self) -> Scanned<u8> {
        let byte = self
            .bytes
            .get(self.position)
            .copied()
            .ok_or(Stop::Incomplete)?;
        self.position += 1;
        Ok(byte)
    }

    fn expect(&mut self, wanted: u8) -> Scanned<()> {
        if self.peek()? == wanted {
            self.position += 1;
            Ok(())
        } else {
            Err(Stop::Malformed)
        }
    }

    /// Skips one value and returns its raw text.
    pub(crate) fn raw_value(&mut self) -> Scanned<&'a [u8]> {
        self.skip_whitespace();
        let start = self.position;
        self.skip_value()?;
        self.bytes.get(start..self.position).ok_or(Stop::Malformed)
    }

    /// Skips one value.
    pub(crate) fn skip_value(&mut self) -> Scanned<()> {
        match self.peek()? {
            b'{' => self.object(|scanner, _| scanner.skip_value().map(|()| Flow::Next)),
            b'[' => self.array(|scanner, _| scanner.skip_value().map(|()| Flow::Next)),
            b'"' => self.string(&mut Discard),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => Err(Stop::Malformed),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scanned<()> {
        for &wanted in word {
            if self.next_byte()? != wanted {
                return Err(Stop::Malformed);
            }
        }
        Ok(())
    }

    /// A number's raw text. At the end of an incomplete text a number may go on, so it is
    /// incomplete there.
    pub(crate) fn number(&mut self) -> Scanned<&'a [u8]> {
        self.skip_whitespace();
        let start = self.position;
        while let Some(byte) = self.bytes.get(self.position) {
            if byte.is_ascii_digit() || matches!(byte, b'-' | b'+' | b'.' | b'e' | b'E') {
                self.position += 1;
            } else {
                break;
            }
        }
        if self.position == self.bytes.len() && !self.complete {
            return Err(Stop::Incomplete);
        }
        let text = self
            .bytes
            .get(start..self.position)
            .ok_or(Stop::Malformed)?;
        if text.is_empty() || text == b"-" {
            return Err(Stop::Malformed);
        }
        Ok(text)
    }

    /// Reads a string, writing its unescaped bytes to `sink` as they are read.
    pub(crate) fn string(&mut self, sink: &mut impl Sink) -> Scanned<()> {
        self.expect(b'"')?;
        loop {
            let rest = self.bytes.get(self.position..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
                .ok_or(Stop::Incomplete)?;
            sink.write(rest.get(..run).unwrap_or_default());
            self.position += run;
            match self.next_byte()? {
                b'"' => return Ok(()),
                b'\\' => self.escape(sink)?,
                _ => return Err(Stop::Malformed),
            }
        }
    }

    fn escape(&mut self, sink: &mut impl Sink) -> Scanned<()> {
        let unescaped = match self.next_byte()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let character = self.unicode_escape()?;
                let mut buffer = [0u8; 4];
                sink.write(character.encode_utf8(&mut buffer).as_bytes());
                return Ok(());
            }
            _ => return Err(Stop::Malformed),
        };
        sink.write(&[unescaped]);
        Ok(())
    }

    /// After `\u`: one character, joining a surrogate pair; a lone surrogate is U+FFFD.
    fn unicode_escape(&mut self) -> Scanned<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            let pair_follows = self.bytes.get(self.position..self.position + 2);
            match pair_follows {
                Some(b"\\u") => {
                    let saved = self.position;
                    self.position += 2;
                    let second = self.hex4()?;
                    if (0xDC00..0xE000).contains(&second) {
                        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        return Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                    self.position = saved;
                }
                None if self.position + 2 > self.bytes.len() && !self.complete => {
                    return Err(Stop::Incomplete);
                }
                _ => {}
            }
            return Ok(char::REPLACEMENT_CHARACTER);
        }
        Ok(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn hex4(&mut self) -> Scanned<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = match self.next_byte()? {
                byte @ b'0'..=b'9' => byte - b'0',
                byte @ b'a'..=b'f' => byte - b'a' + 10,
                byte @ b'A'..=b'F' => byte - b'A' + 10,
                _ => return Err(Stop::Malformed),
            };
            value = value * 16 + u32::from(digit);
        }
        Ok(value)
    }

    /// Reads an object: `member` is called with each member's unescaped name and must read or
    /// skip its value. [`Flow::Done`] stops at that member, leaving the rest unread.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Scanner<'a>, &[u8]) -> Scanned<Flow>,
    ) -> Scanned<()> {
        self.enter(b'{')?;
        if self.peek()? == b'}' {
            self.position += 1;
            return self.leave();
        }
        let mut name = Vec::new();
        loop {
            name.clear();
            self.string(&mut name)?;
            self.expect(b':')?;
            if member(self, &name)? == Flow::Done {
                return self.leave();
            }
            match self.peek()? {
                b',' => self.position += 1,
                b'}' => {
                    self.position += 1;
                    return self.leave();
                }
                _ => return Err(Stop::Malformed),
            }
        }
    }

    /// Reads an array: `element` is called with each element's index and must read or skip it.
    pub(crate) fn array(
        &mut self,
        mut element: impl FnMut(&mut Scanner<'a>, usize) -> Scanned<Flow>,
    ) -> Scanned<()> {
        self.enter(b'[')?;
        if self.peek()? == b']' {
            self.position += 1;
            return self.leave();
        }
        let mut index = 0;
        loop {
            if element(self, index)? == Flow::Done {
                return self.leave();
            }
            index += 1;
            match self.peek()? {
                b',' => self.position += 1,
                b']' => {
                    self.position += 1;
                    return self.leave();
                }
                _ => return Err(Stop::Malformed),
            }
        }
    }

    fn enter(&mut self, open: u8) -> Scanned<()> {
        self.expect(open)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Stop::Malformed);
        }
        Ok(())
    }

    fn leave(&mut self) -> Scanned<()> {
        self.depth = self.depth.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_of(text: &str, complete: bool) -> Scanned<Vec<u8>> {
        let mut out = Vec::new();
        Scanner::new(text.as_bytes(), complete)
            .string(&mut out)
            .map(|()| out)
    }

    #[test]
    fn strings_are_unescaped() {
        assert_eq!(
            string_of(r#""a\"b\\c\/d\n""#, true),
            Ok(b"a\"b\\c/d\n".to_vec())
        );
        assert_eq!(
            string_of(r#""\u00e9t\u00E9""#, true),
            Ok("été".as_bytes().to_vec())
        );
        assert_eq!(
            string_of(r#""\ud83d\ude00""#, true),
            Ok("😀".as_bytes().to_vec())
        );
        assert_eq!(
            string_of(r#""x\ud83dy""#, true),
            Ok("x\u{fffd}y".as_bytes().to_vec())
        );
        assert_eq!(
            string_of(r#""\udc00""#, true),
            Ok("\u{fffd}".as_bytes().to_vec())
        );
    }

    #[test]
    fn a_cut_string_is_incomplete_and_a_bad_one_malformed() {
        assert_eq!(string_of(r#""abc"#, false), Err(Stop::Incomplete));
        assert_eq!(string_of(r#""ab\"#, false), Err(Stop::Incomplete));
        assert_eq!(string_of(r#""\u00"#, false), Err(Stop::Incomplete));
        assert_eq!(string_of(r#""\ud83d"#, false), Err(Stop::Incomplete));
        assert_eq!(string_of(r#""\q""#, true), Err(Stop::Malformed));
        assert_eq!(string_of("\"a\nb\"", true), Err(Stop::Malformed));
        assert_eq!(string_of("abc", true), Err(Stop::Malformed));
    }

    #[test]
    fn values_are_skipped_whole_and_raw_text_returned() {
        let text = br#" {"a": [1, -2.5e3, true, false, null, {"b": "c"}], "d": {}} tail"#;
        let mut scanner = Scanner::new(text, true);
        assert_eq!(
            scanner.raw_value(),
            Ok(&br#"{"a": [1, -2.5e3, true, false, null, {"b": "c"}], "d": {}}"#[..])
        );
    }

    #[test]
    fn a_number_at_the_end_is_incomplete_unless_the_text_is() {
        assert_eq!(Scanner::new(b"12", false).number(), Err(Stop::Incomplete));
        assert_eq!(Scanner::new(b"12", true).number(), Ok(&b"12"[..]));
        assert_eq!(Scanner::new(b"12,", false).number(), Ok(&b"12"[..]));
    }

    #[test]
    fn every_prefix_of_a_document_is_incomplete_never_malformed() {
        let text = br#"{"model":"m","messages":[{"role":"user","content":"h\u00e9\"llo"}],"n":12,"ok":true}"#;
        for end in 0..text.len() {
            assert_eq!(
                Scanner::new(&text[..end], false).skip_value(),
                Err(Stop::Incomplete),
                "prefix of {end} bytes"
            );
        }
        assert_eq!(Scanner::new(text, false).skip_value(), Ok(()));
    }

    #[test]
    fn deep_nesting_is_malformed_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            Scanner::new(deep.as_bytes(), false).skip_value(),
            Err(Stop::Malformed)
        );
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(Scanner::new(ok.as_bytes(), true).skip_value(), Ok(()));
    }

    #[test]
    fn object_members_can_stop_early() {
        let mut seen = Vec::new();
        let result = Scanner::new(br#"{"a":1,"b":2,"c":"#, false).object(|scanner, name| {
            seen.push(name.to_vec());
            scanner.skip_value()?;
            Ok(if name == b"b" { Flow::Done } else { Flow::Next })
        });
        assert_eq!(result, Ok(()));
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
