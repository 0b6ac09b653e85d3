//! The value written to the output header, shared with `xds-agent explain` so both agree bit for bit.
//!
//! `xxh64`: the 16 lower-case hex digits of xxHash64 (seed 0) of `"<kind>:<value>"`, where kind is
//! `header`, `cookie`, `query`, `sourceIp` or `composite`. `raw`: the value itself, except that a
//! value longer than `maxKeyLength` (or holding bytes a header value cannot carry) is written in
//! its `xxh64` form, so a long key is never truncated into a collision.

use std::hash::Hasher;

use twox_hash::XxHash64;

use crate::config::HashMode;

/// The output header value for a key of source `kind` with normalised `value`, without a length
/// limit (see [`affinity_header_value_bytes`] for the form the filter uses).
pub fn affinity_header_value(kind: &str, value: &str, mode: HashMode) -> String {
    match mode {
        HashMode::Xxh64 => xxh64_hex(kind, value.as_bytes()),
        HashMode::Raw => value.to_owned(),
    }
}

/// The output header value exactly as the filter writes it: like [`affinity_header_value`], but
/// in `raw` mode a value longer than `max_key_length` bytes, or one holding a control character,
/// is written hashed.
pub fn affinity_header_value_bytes(
    kind: &str,
    value: &[u8],
    mode: HashMode,
    max_key_length: usize,
) -> Vec<u8> {
    match mode {
        HashMode::Raw if value.len() <= max_key_length && is_header_safe(value) => value.to_vec(),
        HashMode::Raw | HashMode::Xxh64 => xxh64_hex(kind, value).into_bytes(),
    }
}

/// xxHash64 (seed 0) of `"<kind>:<value>"` as 16 lower-case hex digits.
pub fn xxh64_hex(kind: &str, value: &[u8]) -> String {
    let mut hasher = XxHash64::with_seed(0);
    hasher.write(kind.as_bytes());
    hasher.write(b":");
    hasher.write(value);
    format!("{:016x}", hasher.finish())
}

/// Whether `value` can be sent as a header value as is: no control characters except tab.
fn is_header_safe(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&byte| byte == b'\t' || !(byte.is_ascii_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_is_seed_zero_over_kind_colon_value() {
        // Reference values of XXH64(seed 0): "" and "abc" are the algorithm's published vectors.
        let mut empty = XxHash64::with_seed(0);
        empty.write(b"");
        assert_eq!(empty.finish(), 0xef46_db37_51d8_e999);
        let mut abc = XxHash64::with_seed(0);
        abc.write(b"abc");
        assert_eq!(abc.finish(), 0x44bc_2cf5_ad77_0999);
        // Writing in pieces is the same as hashing the joined string.
        let mut joined = XxHash64::with_seed(0);
        joined.write(b"header:alice");
        assert_eq!(
            xxh64_hex("header", b"alice"),
            format!("{:016x}", joined.finish())
        );
    }

    #[test]
    fn xxh64_output_is_16_lower_hex_digits() {
        for value in [
            "",
            "a",
            "alice",
            "ALICE",
            "a much longer value than sixteen bytes",
        ] {
            let out = affinity_header_value("cookie", value, HashMode::Xxh64);
            assert_eq!(out.len(), 16, "{out}");
            assert!(
                out.bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
                "{out}"
            );
        }
    }

    #[test]
    fn kind_is_part_of_the_hash() {
        let header = affinity_header_value("header", "alice", HashMode::Xxh64);
        let cookie = affinity_header_value("cookie", "alice", HashMode::Xxh64);
        assert_ne!(header, cookie);
    }

    #[test]
    fn raw_is_the_value_itself() {
        assert_eq!(
            affinity_header_value("query", "Alice", HashMode::Raw),
            "Alice"
        );
        assert_eq!(
            affinity_header_value_bytes("query", b"Alice", HashMode::Raw, 5),
            b"Alice"
        );
    }

    #[test]
    fn raw_hashes_overlong_and_unsafe_values() {
        let long = affinity_header_value_bytes("query", b"abcdef", HashMode::Raw, 5);
        assert_eq!(long, xxh64_hex("query", b"abcdef").into_bytes());
        let control = affinity_header_value_bytes("query", b"a\nb", HashMode::Raw, 100);
        assert_eq!(control, xxh64_hex("query", b"a\nb").into_bytes());
        assert_eq!(
            affinity_header_value_bytes("query", b"a\tb", HashMode::Raw, 100),
            b"a\tb"
        );
    }

    #[test]
    fn bytes_form_matches_str_form_in_xxh64_mode() {
        assert_eq!(
            affinity_header_value_bytes("sourceIp", b"10.0.0.1", HashMode::Xxh64, 1),
            affinity_header_value("sourceIp", "10.0.0.1", HashMode::Xxh64).into_bytes()
        );
    }
}
