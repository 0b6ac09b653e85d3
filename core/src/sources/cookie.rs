//! `{"cookie": "session"}`: the first cookie of that name across every `Cookie` header, parsed as
//! RFC 6265 §4.2 says and tolerant of what browsers really send.

use super::{Extraction, KeySource, found};
use crate::body::Lookup;
use crate::config::decode::{Decoded, string};
use crate::config::json::Value;
use crate::config::validate::{Errors, token_problem};
use crate::request::RequestView;

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    string(inner, path).map(KeySource::Cookie)
}

pub(crate) fn validate(name: &str, path: &str, errors: &mut Errors) {
    if let Some(problem) = token_problem(name) {
        errors.push(path, problem);
    }
}

/// Searches the first `Cookie` header (one single-header lookup on the host) and fetches every copy
/// only when the cookie is not in it: most requests carry one `Cookie` header, and the answer is the
/// same as searching every copy in order.
pub(crate) fn value<R: RequestView>(name: &str, extraction: &Extraction<'_, R>) -> Lookup {
    let request = extraction.request;
    let Some(first) = request.first_header_value("cookie") else {
        return Lookup::Missing;
    };
    if let Some(value) = find_cookie(&[&first], name) {
        return found(Some(value), extraction.lowercase);
    }
    let every_copy = request.header_values("cookie");
    found(
        find_cookie(every_copy.get(1..).unwrap_or_default(), name),
        extraction.lowercase,
    )
}

/// The value of the first cookie called `name` in the `Cookie` header values (searched in order),
/// with one pair of surrounding double quotes removed. Pairs without `=` are skipped; names match
/// exactly (case-sensitive), after trimming spaces.
pub fn find_cookie<'a>(cookie_headers: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    cookie_headers
        .iter()
        .flat_map(|header| header.split(|&byte| byte == b';'))
        .find_map(|pair| {
            let separator = pair.iter().position(|&byte| byte == b'=')?;
            let (pair_name, value) = (&pair[..separator], &pair[separator + 1..]);
            (pair_name.trim_ascii() == name.as_bytes()).then(|| unquote(value.trim_ascii()))
        })
}

fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::find_cookie;

    fn find<'a>(headers: &[&'a str], name: &str) -> Option<&'a [u8]> {
        let headers: Vec<&[u8]> = headers.iter().map(|header| header.as_bytes()).collect();
        find_cookie(&headers, name)
    }

    #[test]
    fn finds_a_cookie_among_several() {
        assert_eq!(
            find(&["a=1; session=abc; b=2"], "session"),
            Some(&b"abc"[..])
        );
        assert_eq!(find(&["session=abc"], "session"), Some(&b"abc"[..]));
        assert_eq!(find(&["a=1;session=abc"], "session"), Some(&b"abc"[..]));
    }

    #[test]
    fn searches_every_cookie_header_in_order() {
        assert_eq!(
            find(&["a=1", "session=second"], "session"),
            Some(&b"second"[..])
        );
        assert_eq!(
            find(&["session=first", "session=second"], "session"),
            Some(&b"first"[..])
        );
    }

    #[test]
    fn names_match_exactly() {
        assert_eq!(
            find(&["Session=abc; xsession=1; session_x=2"], "session"),
            None
        );
        assert_eq!(find(&["  session  =  abc  "], "session"), Some(&b"abc"[..]));
    }

    #[test]
    fn strips_one_pair_of_quotes() {
        assert_eq!(find(&["session=\"abc\""], "session"), Some(&b"abc"[..]));
        assert_eq!(find(&["session=\"abc"], "session"), Some(&b"\"abc"[..]));
        assert_eq!(find(&["session=\""], "session"), Some(&b"\""[..]));
    }

    #[test]
    fn value_may_contain_equals_and_empty_values_are_returned_empty() {
        assert_eq!(find(&["session=a=b="], "session"), Some(&b"a=b="[..]));
        assert_eq!(find(&["session="], "session"), Some(&b""[..]));
    }

    #[test]
    fn malformed_input_finds_nothing_and_does_not_panic() {
        for header in [
            "",
            ";",
            ";;;",
            "=",
            "==",
            "session",
            "; ; =x",
            "\u{0}\u{ff}",
        ] {
            assert_eq!(find(&[header], "session"), None, "{header:?}");
        }
        let binary: &[u8] = b"session=\xff\xfe; a=1";
        assert_eq!(find_cookie(&[binary], "session"), Some(&b"\xff\xfe"[..]));
    }
}
