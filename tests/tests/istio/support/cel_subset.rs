//! Evaluates the few CEL rules (`x-kubernetes-validations`) Istio's CRDs attach to
//! fields this repository sets, by recognising the exact rule text. Any other rule
//! is reported as unsupported by [`evaluate`] returning `None`.

use serde_json::Value;

/// The outcome of one recognised rule: `Ok` or the rule's own message.
pub type RuleResult = Result<(), String>;

/// Evaluates `rule` (with its `message`) against `value`; `None` when the rule is not one we know.
pub fn evaluate(rule: &str, message: &str, value: &Value) -> Option<RuleResult> {
    let rule = rule.trim();
    let verdict = if rule == "duration(self) >= duration('1ms')" {
        let text = value.as_str()?;
        go_duration_nanos(text).is_some_and(|nanos| nanos >= 1_000_000)
    } else if rule.contains("getScheme()") && rule.contains("isURL") {
        let text = value.as_str()?;
        url_scheme_allowed(text)
    } else if rule.starts_with("(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0)") {
        let set = ["selector", "targetRef", "targetRefs"]
            .iter()
            .filter(|k| value.get(**k).is_some())
            .count();
        set <= 1
    } else {
        return None;
    };
    Some(if verdict {
        Ok(())
    } else {
        Err(message.to_string())
    })
}

/// Parses a Go `time.ParseDuration` string ("1h2m3.5s", "300ms") into nanoseconds.
pub fn go_duration_nanos(text: &str) -> Option<u128> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some(total as u128)
}

fn url_scheme_allowed(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            matches!(scheme, "http" | "https" | "oci" | "file") && !rest.is_empty()
        }
        // No scheme: Istio reads it as an OCI reference.
        None => !url.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(go_duration_nanos("1ms"), Some(1_000_000));
        assert_eq!(go_duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration_nanos("10"), None);
        assert_eq!(go_duration_nanos("10 s"), None);
        assert_eq!(go_duration_nanos("-1s"), None);
        let rule = "duration(self) >= duration('1ms')";
        assert_eq!(evaluate(rule, "too short", &json!("10s")), Some(Ok(())));
        assert_eq!(
            evaluate(rule, "too short", &json!("500us")),
            Some(Err("too short".into()))
        );
        assert_eq!(
            evaluate(rule, "too short", &json!("ten seconds")),
            Some(Err("too short".into()))
        );
    }

    #[test]
    fn url_schemes() {
        let rule = "isURL(self) ? (url(self).getScheme() in [\"\", \"http\", \"https\", \"oci\", \"file\"]) : x";
        for ok in [
            "oci://ghcr.io/a/b:1",
            "https://h/x.wasm",
            "file:///x.wasm",
            "ghcr.io/a/b:1",
        ] {
            assert_eq!(evaluate(rule, "bad", &json!(ok)), Some(Ok(())), "{ok}");
        }
        assert_eq!(
            evaluate(rule, "bad", &json!("ftp://h/x.wasm")),
            Some(Err("bad".into()))
        );
    }

    #[test]
    fn unknown_rules_are_not_evaluated() {
        assert_eq!(evaluate("self.size() > 1", "m", &json!("x")), None);
    }
}
