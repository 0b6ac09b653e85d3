//! Label selectors as the API server reads `labelSelector`: comma-separated requirements, all of which must
//! hold — `a=b` (or `a==b`), `a!=b`, `a` (exists), `!a` (does not exist), `a in (x,y)`, `a notin (x,y)`,
//! `a>1`, `a<1`. `!=` and `notin` also match objects without the label, as in Kubernetes.

use serde_json::Value;

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

impl LabelSelector {
    /// Parses a selector; the error says which requirement is wrong and why.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!("empty requirement in {text:?}"));
            }
            requirements.push(Requirement::parse(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            r.operator.holds(value)
        })
    }
}

impl Requirement {
    fn parse(part: &str) -> Result<Requirement, String> {
        if let Some(key) = part.strip_prefix('!') {
            let key = key.trim();
            check_key(key, part)?;
            return Ok(Requirement {
                key: key.to_string(),
                operator: Operator::DoesNotExist,
            });
        }
        let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
        let key = &part[..key_end];
        check_key(key, part)?;
        let rest = part[key_end..].trim_start();
        let operator = if rest.is_empty() {
            Operator::Exists
        } else if let Some(value) = rest.strip_prefix("!=") {
            Operator::NotEquals(value_of(value, part)?)
        } else if let Some(value) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
            Operator::Equals(value_of(value, part)?)
        } else if let Some(number) = rest.strip_prefix('>') {
            Operator::GreaterThan(number_of(number, part)?)
        } else if let Some(number) = rest.strip_prefix('<') {
            Operator::LessThan(number_of(number, part)?)
        } else if let Some(set) = rest.strip_prefix("notin") {
            Operator::NotIn(set_of(set, part)?)
        } else if let Some(set) = rest.strip_prefix("in") {
            Operator::In(set_of(set, part)?)
        } else {
            return Err(format!("unknown operator in requirement {part:?}"));
        };
        Ok(Requirement {
            key: key.to_string(),
            operator,
        })
    }
}

impl Operator {
    fn holds(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Operator::Exists, found) => found.is_some(),
            (Operator::DoesNotExist, found) => found.is_none(),
            (Operator::Equals(want), Some(found)) => want == found,
            (Operator::NotEquals(want), found) => found != Some(want.as_str()),
            (Operator::In(set), Some(found)) => set.iter().any(|v| v == found),
            (Operator::NotIn(set), found) => !found.is_some_and(|f| set.iter().any(|v| v == f)),
            (Operator::GreaterThan(bound), Some(found)) => {
                found.parse::<i64>().is_ok_and(|n| n > *bound)
            }
            (Operator::LessThan(bound), Some(found)) => {
                found.parse::<i64>().is_ok_and(|n| n < *bound)
            }
            (_, None) => false,
        }
    }
}

/// Splits at commas that are not inside a `( … )` set.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced ')' in {text:?}"))?;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed '(' in {text:?}"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn check_key(key: &str, part: &str) -> Result<(), String> {
    if key.is_empty() || !key.chars().all(is_key_char) {
        return Err(format!("invalid label key {key:?} in requirement {part:?}"));
    }
    Ok(())
}

fn value_of(text: &str, part: &str) -> Result<String, String> {
    let value = text.trim();
    if !value.chars().all(is_value_char) {
        return Err(format!(
            "invalid label value {value:?} in requirement {part:?}"
        ));
    }
    Ok(value.to_string())
}

fn number_of(text: &str, part: &str) -> Result<i64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{:?} is not an integer in requirement {part:?}",
            text.trim()
        )
    })
}

fn set_of(text: &str, part: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a set '(a,b)' in requirement {part:?}"))?;
    inner.split(',').map(|v| value_of(v, part)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "labels": labels}})
    }

    fn matches(selector: &str, labels: Value) -> bool {
        LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .matches(&object(labels))
    }

    #[test]
    fn equality_and_inequality() {
        assert!(matches("app=web", json!({"app": "web"})));
        assert!(matches("app==web", json!({"app": "web"})));
        assert!(!matches("app=web", json!({"app": "db"})));
        assert!(!matches("app=web", json!({})));
        assert!(matches("app!=web", json!({"app": "db"})));
        assert!(matches("app!=web", json!({})), "!= matches a missing label");
        assert!(!matches("app!=web", json!({"app": "web"})));
    }

    #[test]
    fn existence() {
        assert!(matches("app", json!({"app": ""})));
        assert!(!matches("app", json!({"tier": "x"})));
        assert!(matches("!app", json!({"tier": "x"})));
        assert!(!matches("! app", json!({"app": "web"})));
        let no_labels = json!({"metadata": {}});
        assert!(!LabelSelector::parse("app").unwrap().matches(&no_labels));
        assert!(LabelSelector::parse("!app").unwrap().matches(&no_labels));
    }

    #[test]
    fn sets_with_commas_inside_parentheses() {
        assert!(matches("app in (web, db)", json!({"app": "db"})));
        assert!(!matches("app in (web,db)", json!({"app": "cache"})));
        assert!(matches("app notin (web,db)", json!({"app": "cache"})));
        assert!(matches("app notin (web,db)", json!({})));
        assert!(matches(
            "app in (web,db),tier=front",
            json!({"app": "web", "tier": "front"})
        ));
        assert!(!matches(
            "app in (web,db),tier=front",
            json!({"app": "web", "tier": "back"})
        ));
    }

    #[test]
    fn every_requirement_must_hold() {
        let labels = json!({"app": "web", "kubernetes.io/service-name": "web", "rank": "3"});
        assert!(matches(
            "app=web,kubernetes.io/service-name=web,!gone",
            labels.clone()
        ));
        assert!(!matches("app=web,gone", labels.clone()));
        assert!(matches("rank>2,rank<4", labels.clone()));
        assert!(!matches("rank>3", labels));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches("", json!({})));
        assert_eq!(
            LabelSelector::parse("  ").unwrap(),
            LabelSelector::default()
        );
    }

    #[test]
    fn bad_selectors_are_rejected_with_the_requirement() {
        for (selector, says) in [
            ("app=we b", "invalid label value"),
            ("app in web", "expected a set"),
            ("app in (web", "unclosed"),
            ("app)", "unbalanced"),
            ("app=web,", "empty requirement"),
            ("=web", "invalid label key"),
            ("app~web", "unknown operator"),
            ("rank>x", "not an integer"),
        ] {
            let error = LabelSelector::parse(selector).unwrap_err();
            assert!(error.contains(says), "{selector}: {error}");
        }
    }
}
