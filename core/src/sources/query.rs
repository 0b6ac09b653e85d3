//! `{"query": "user"}`: a parameter of `:path`'s query string, parsed with
//! `application/x-www-form-urlencoded` rules (`&`-separated pairs, `+` is a space, `%XX` escapes;
//! a malformed escape is kept literally).

use std::borrow::Cow;

use super::{Extraction, KeySource, found};
use crate::body::Lookup;
use crate::config::decode::{Decoded, string};
use crate::config::json::Value;
use crate::config::validate::Errors;
use crate::request::RequestView;

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    string(inner, path).map(KeySource::Query)
}

pub(crate) fn validate(name: &str, path: &str, errors: &mut Errors) {
    if name.is_empty() {
        errors.push(path, "must not be empty");
    }
}

pub(crate) fn value<R: RequestView>(name: &str, extraction: &Extraction<'_, R>) -> Lookup {
    let Some(path) = extraction.request.first_header_value(":path") else {
        return Lookup::Missing;
    };
    found(find_query_param(&path, name), extraction.lowercase)
}

/// The decoded value of the first query parameter called `name` (compared after decoding) in
/// `path`; the fragment, if any, is ignored. A parameter without `=` has an empty value.
pub fn find_query_param<'a>(path: &'a [u8], name: &str) -> Option<Cow<'a, [u8]>> {
    let path = path
        .iter()
        .position(|&byte| byte == b'#')
        .map_or(path, |fragment| &path[..fragment]);
    let query = &path[path.iter().position(|&byte| byte == b'?')? + 1..];
    query.split(|&byte| byte == b'&').find_map(|pair| {
        let (pair_name, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(separator) => (&pair[..separator], &pair[separator + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (form_decode(pair_name).as_ref() == name.as_bytes()).then(|| form_decode(value))
    })
}

/// Decodes `+` and `%XX`; borrows when there is nothing to decode.
fn form_decode(text: &[u8]) -> Cow<'_, [u8]> {
    if !text.iter().any(|&byte| byte == b'+' || byte == b'%') {
        return Cow::Borrowed(text);
    }
    let mut decoded = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let escape = text
                    .get(index + 1..index + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? * 16 + hex_value(hex[1])?));
                match escape {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    Cow::Owned(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::find_query_param;

    fn find(path: &str, name: &str) -> Option<Vec<u8>> {
        find_query_param(path.as_bytes(), name).map(|value| value.into_owned())
    }

    #[test]
    fn finds_a_parameter() {
        assert_eq!(find("/a?user=alice", "user"), Some(b"alice".to_vec()));
        assert_eq!(
            find("/a?x=1&user=alice&y=2", "user"),
            Some(b"alice".to_vec())
        );
        assert_eq!(
            find("/a?user=alice&user=bob", "user"),
            Some(b"alice".to_vec())
        );
    }

    #[test]
    fn no_query_or_no_match_is_none() {
        assert_eq!(find("/a", "user"), None);
        assert_eq!(find("/a?", "user"), None);
        assert_eq!(find("/a?username=x&xuser=y", "user"), None);
        assert_eq!(find("/a#?user=x", "user"), None);
    }

    #[test]
    fn ignores_the_fragment() {
        assert_eq!(find("/a?user=alice#frag", "user"), Some(b"alice".to_vec()));
        assert_eq!(find("/a?x=1#user=alice", "user"), None);
    }

    #[test]
    fn decodes_names_and_values() {
        assert_eq!(find("/?user=a%40b.com", "user"), Some(b"a@b.com".to_vec()));
        assert_eq!(find("/?user=a+b", "user"), Some(b"a b".to_vec()));
        assert_eq!(find("/?us%65r=x", "user"), Some(b"x".to_vec()));
        assert_eq!(
            find("/?user=%e2%82%AC", "user"),
            Some("€".as_bytes().to_vec())
        );
        assert_eq!(find("/?my+key=x", "my key"), Some(b"x".to_vec()));
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(find("/?user=%", "user"), Some(b"%".to_vec()));
        assert_eq!(find("/?user=%4", "user"), Some(b"%4".to_vec()));
        assert_eq!(find("/?user=%zz1", "user"), Some(b"%zz1".to_vec()));
        assert_eq!(find("/?user=100%", "user"), Some(b"100%".to_vec()));
    }

    #[test]
    fn parameter_without_value_is_empty() {
        assert_eq!(find("/?user", "user"), Some(Vec::new()));
        assert_eq!(find("/?user=&x=1", "user"), Some(Vec::new()));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for path in [
            "?",
            "??",
            "?&&&",
            "?=",
            "?==&=",
            "/?%",
            "/?%%%",
            "\u{ff}?\u{0}=\u{1}",
        ] {
            let _ = find(path, "user");
        }
        assert_eq!(
            find_query_param(b"/?user=\xff\xfe", "user").as_deref(),
            Some(&b"\xff\xfe"[..])
        );
    }
}
