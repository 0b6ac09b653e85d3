//! Durations as written in the YAML: an integer and a unit, e.g. `250ms`, `2s`, `5m`, `1h`.

use std::time::Duration;

/// Parse `250ms`, `2s`, `5m` or `1h`.
///
/// # Errors
/// A sentence saying what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected an integer and a unit (ms, s, m, h), e.g. 2s or 250ms"
        )
    };
    let value: u64 = digits.parse().map_err(|_| invalid())?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.checked_mul(60).ok_or_else(invalid)?),
        "h" => Duration::from_secs(value.checked_mul(3600).ok_or_else(invalid)?),
        _ => return Err(invalid()),
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "2",
            "s",
            "1.5s",
            "2 days",
            "-1s",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }
}
