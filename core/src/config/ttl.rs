//! The `ttl` duration: protobuf-JSON form (`"3600s"`, `"1.5s"`), as Istio's `httpCookie.ttl`.

/// Parses a protobuf-JSON duration (`<seconds>[.<fraction>]s`, at most 9 fraction digits) into
/// whole seconds (the fraction is dropped: `Max-Age` counts whole seconds).
pub fn parse_ttl_seconds(text: &str) -> Result<u64, String> {
    let Some(number) = text.strip_suffix('s') else {
        return Err(format!(
            "`{text}` is not a duration: expected seconds with an `s` suffix, e.g. \"3600s\""
        ));
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole)
        || fraction.is_some_and(|fraction| !all_digits(fraction) || fraction.len() > 9)
    {
        return Err(format!(
            "`{text}` is not a duration: expected seconds with an `s` suffix, e.g. \"3600s\""
        ));
    }
    whole
        .parse::<u64>()
        .map_err(|_| format!("`{text}` is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::parse_ttl_seconds;

    #[test]
    fn accepts_protobuf_json_durations() {
        assert_eq!(parse_ttl_seconds("3600s"), Ok(3600));
        assert_eq!(parse_ttl_seconds("0s"), Ok(0));
        assert_eq!(parse_ttl_seconds("1.5s"), Ok(1));
        assert_eq!(parse_ttl_seconds("2.000000001s"), Ok(2));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "s",
            "3600",
            "-1s",
            "1h",
            " 1s",
            "1.s",
            ".5s",
            "1.0000000001s",
            "1e3s",
            "+1s",
        ] {
            assert!(parse_ttl_seconds(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            parse_ttl_seconds("99999999999999999999999s")
                .unwrap_err()
                .contains("too long")
        );
    }
}
