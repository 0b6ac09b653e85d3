//! Durations in Istio objects: protobuf JSON (`"1.5s"`) or Go syntax (`"1m30s"`, `"250ms"`), which
//! the CRDs' CEL rules accept, checked the way istiod's validation checks them.

use std::time::Duration;

/// Parse `text` as a duration of at least 1 ms with millisecond precision (istiod's rule).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_istio_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_go_duration(text)?;
    if duration < Duration::from_millis(1) {
        return Err(format!("duration {text:?} must be at least 1ms"));
    }
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "duration {text:?}: only millisecond precision is supported"
        ));
    }
    Ok(duration)
}

/// Parse a Go / protobuf duration: one or more `<decimal><unit>` with units h, m, s, ms, us, ns.
///
/// # Errors
/// A sentence naming the expected syntax.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: expected e.g. 30s, 1.5s, 250ms or 1m30s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(invalid()),
        };
        total_nanos = total_nanos
            .checked_add(decimal_times(number, unit_nanos).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        rest = after;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| invalid())?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with an optional fraction) × `unit_nanos`, truncated to whole nanoseconds.
fn decimal_times(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let mut scale = unit_nanos;
    for digit in fraction.chars() {
        let digit = u128::from(digit.to_digit(10)?);
        scale /= 10;
        nanos = nanos.checked_add(digit * scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protobuf_and_go_forms() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0.010s"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "10", "s", "1x", "-1s", "1.s.", "1 s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn istio_rules_minimum_and_precision() {
        assert_eq!(parse_istio_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(
            parse_istio_duration("500us")
                .unwrap_err()
                .contains("at least 1ms")
        );
        assert!(
            parse_istio_duration("1.0005s")
                .unwrap_err()
                .contains("millisecond precision")
        );
        assert!(parse_istio_duration("0s").is_err());
    }
}
