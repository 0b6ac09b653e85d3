//! A validator for the OpenAPI v3 subset Kubernetes CRDs use (structural schemas),
//! with Kubernetes semantics where they differ from plain JSON Schema:
//!
//! - an object field not declared in `properties` (nor allowed by `additionalProperties`
//!   or `x-kubernetes-preserve-unknown-fields`) is an error — `kubectl apply` with
//!   strict field validation rejects it, and a typo would otherwise be silently pruned;
//! - `null` is only accepted where `nullable: true`;
//! - `x-kubernetes-int-or-string` accepts an integer or a string;
//! - `x-kubernetes-list-type: map` / `set` items must be unique (by `x-kubernetes-list-map-keys`).
//!
//! Keywords: type, properties, required, additionalProperties, items, enum, oneOf,
//! anyOf, allOf, not, minimum, maximum, minLength, maxLength, pattern, minItems,
//! maxItems, minProperties, maxProperties. `format` is not checked (format-free).
//! CEL rules (`x-kubernetes-validations`) are evaluated only when `cel_subset`
//! recognises them; the others are skipped.

use regex::Regex;

use super::cel_subset;
use serde_json::{Map, Value};

/// One schema violation: the field path (`spec.trafficPolicy.loadBalancer`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Dotted field path, with `[i]` for list items.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validates `value` against `schema`; returns every violation (empty when valid).
pub fn validate(schema: &Value, value: &Value, root_path: &str) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    check(schema, value, root_path, true, &mut errors);
    errors
}

fn error(errors: &mut Vec<SchemaError>, path: &str, message: String) {
    errors.push(SchemaError {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.into()
        },
        message,
    });
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    let actual = type_name(value);
    actual == expected || (expected == "number" && actual == "integer")
}

/// `structural` is false inside oneOf/anyOf/allOf/not branches: those only add value
/// validations (`required`, ...) and never declare fields, so unknown-field checks
/// belong to the enclosing structural schema alone.
fn check(
    schema: &Value,
    value: &Value,
    path: &str,
    structural: bool,
    errors: &mut Vec<SchemaError>,
) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if value.is_null() {
        if structural && !flag(schema, "nullable") {
            error(errors, path, "null is not allowed here".into());
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(type_name(value), "integer" | "string") {
            error(
                errors,
                path,
                format!(
                    "expected an integer or a string, found {}",
                    type_name(value)
                ),
            );
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        error(
            errors,
            path,
            format!("expected {expected}, found {}", type_name(value)),
        );
        return;
    }
    check_enum(schema, value, path, errors);
    match value {
        Value::String(s) => check_string(schema, s, path, errors),
        Value::Number(_) => check_number(schema, value, path, errors),
        Value::Array(items) => check_array(schema, items, path, structural, errors),
        Value::Object(fields) => check_object(schema, fields, path, structural, errors),
        Value::Bool(_) | Value::Null => {}
    }
    check_combinators(schema, value, path, errors);
    if structural {
        check_cel_rules(schema, value, path, errors);
    }
}

fn check_cel_rules(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    else {
        return;
    };
    for rule in rules {
        let text = rule["rule"].as_str().unwrap_or_default();
        let message = rule["message"].as_str().unwrap_or(text);
        if let Some(Err(message)) = cel_subset::evaluate(text, message, value) {
            error(errors, path, message);
        }
    }
}

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn check_enum(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        error(
            errors,
            path,
            format!("{value} is not one of [{}]", list.join(", ")),
        );
    }
}

fn check_string(schema: &Map<String, Value>, s: &str, path: &str, errors: &mut Vec<SchemaError>) {
    let length = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        error(errors, path, format!("shorter than minLength {min}"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        error(errors, path, format!("longer than maxLength {max}"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => {
                error(
                    errors,
                    path,
                    format!("{s:?} does not match pattern {pattern}"),
                );
            }
            Ok(_) => {}
            Err(e) => error(
                errors,
                path,
                format!("schema pattern {pattern} is not a valid regex: {e}"),
            ),
        }
    }
}

fn check_number(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    let Some(n) = value.as_f64() else {
        return;
    };
    let exclusive_min = flag(schema, "exclusiveMinimum");
    let exclusive_max = flag(schema, "exclusiveMaximum");
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && (n < min || (exclusive_min && n == min))
    {
        error(errors, path, format!("{value} is below the minimum {min}"));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && (n > max || (exclusive_max && n == max))
    {
        error(errors, path, format!("{value} is above the maximum {max}"));
    }
}

fn check_array(
    schema: &Map<String, Value>,
    items: &[Value],
    path: &str,
    structural: bool,
    errors: &mut Vec<SchemaError>,
) {
    let count = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        error(
            errors,
            path,
            format!("has {count} items, fewer than minItems {min}"),
        );
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        error(
            errors,
            path,
            format!("has {count} items, more than maxItems {max}"),
        );
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(
                item_schema,
                item,
                &format!("{path}[{i}]"),
                structural,
                errors,
            );
        }
    }
    check_list_uniqueness(schema, items, path, errors);
}

fn check_list_uniqueness(
    schema: &Map<String, Value>,
    items: &[Value],
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    let identity = |item: &Value| -> Value {
        match schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
        {
            Some(keys) => Value::Array(
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            None => item.clone(),
        }
    };
    if let Some("map" | "set") = schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        let mut seen: Vec<Value> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let id = identity(item);
            if seen.contains(&id) {
                error(
                    errors,
                    &format!("{path}[{i}]"),
                    format!("duplicate list entry {id}"),
                );
            }
            seen.push(id);
        }
    }
}

fn check_object(
    schema: &Map<String, Value>,
    fields: &Map<String, Value>,
    path: &str,
    structural: bool,
    errors: &mut Vec<SchemaError>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                error(
                    errors,
                    &child(path, name),
                    "required field is missing".into(),
                );
            }
        }
    }
    let count = fields.len() as u64;
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && count < min
    {
        error(
            errors,
            path,
            format!("has {count} fields, fewer than minProperties {min}"),
        );
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && count > max
    {
        error(
            errors,
            path,
            format!("has {count} fields, more than maxProperties {max}"),
        );
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let preserve_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
    for (key, field_value) in fields {
        let field_path = child(path, key);
        if let Some(field_schema) = properties.and_then(|p| p.get(key)) {
            check(field_schema, field_value, &field_path, structural, errors);
            continue;
        }
        match additional {
            Some(Value::Bool(false)) => error(errors, &field_path, "unknown field".into()),
            Some(additional_schema @ Value::Object(_)) => {
                check(
                    additional_schema,
                    field_value,
                    &field_path,
                    structural,
                    errors,
                );
            }
            Some(_) => {}
            None if structural && !preserve_unknown => {
                error(errors, &field_path, "unknown field".into());
            }
            None => {}
        }
    }
}

fn check_combinators(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
    errors: &mut Vec<SchemaError>,
) {
    let passes = |branch: &Value| validate_branch(branch, value, path).is_empty();
    if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
        for branch in branches {
            errors.extend(validate_branch(branch, value, path));
        }
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array)
        && !branches.iter().any(passes)
    {
        error(
            errors,
            path,
            format!("matches none of the {} anyOf alternatives", branches.len()),
        );
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = branches.iter().filter(|b| passes(b)).count();
        if matching != 1 {
            let fields = set_fields(value);
            error(
                errors,
                path,
                format!(
                    "must match exactly one oneOf alternative, matches {matching} (fields set: {fields})"
                ),
            );
        }
    }
    if let Some(branch) = schema.get("not")
        && passes(branch)
    {
        error(
            errors,
            path,
            "matches a schema it must not match (`not`)".into(),
        );
    }
}

fn validate_branch(branch: &Value, value: &Value, path: &str) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    check(branch, value, path, false, &mut errors);
    errors
}

fn set_fields(value: &Value) -> String {
    match value.as_object() {
        Some(fields) => fields.keys().cloned().collect::<Vec<_>>().join(", "),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        validate(&schema, &value, "spec")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn unknown_fields_are_rejected_unless_preserved_or_additional() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(
            errors(schema.clone(), json!({"a": "x"})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(schema, json!({"b": "x"})),
            vec!["spec.b: unknown field"]
        );
        let preserved = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        assert!(errors(preserved, json!({"anything": {"deep": 1}})).is_empty());
        let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert!(errors(map.clone(), json!({"k": "v"})).is_empty());
        assert_eq!(
            errors(map, json!({"k": 1})),
            vec!["spec.k: expected string, found integer"]
        );
    }

    #[test]
    fn types_are_checked_and_integers_are_numbers() {
        let schema = json!({"type": "object", "properties": {
            "i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"},
            "l": {"type": "array", "items": {"type": "string"}}}});
        assert!(
            errors(
                schema.clone(),
                json!({"i": 3, "n": 3, "b": true, "l": ["x"]})
            )
            .is_empty()
        );
        assert_eq!(
            errors(
                schema,
                json!({"i": "3", "n": 1.5, "b": "yes", "l": ["x", 2]})
            ),
            vec![
                "spec.b: expected boolean, found string",
                "spec.i: expected integer, found string",
                "spec.l[1]: expected string, found integer",
            ]
        );
    }

    #[test]
    fn required_enum_and_bounds() {
        let schema = json!({"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]+$"},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "list": {"type": "array", "maxItems": 1, "items": {"type": "integer"}}}});
        assert_eq!(
            errors(schema.clone(), json!({})),
            vec!["spec.name: required field is missing"]
        );
        let found = errors(
            schema,
            json!({"name": "ABCD", "mode": "C", "port": 0, "list": [1, 2]}),
        );
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(
            found
                .iter()
                .any(|e| e.starts_with("spec.mode: \"C\" is not one of"))
        );
        assert!(found.iter().any(|e| e.contains("longer than maxLength 3")));
        assert!(found.iter().any(|e| e.contains("does not match pattern")));
        assert!(found.iter().any(|e| e.contains("below the minimum 1")));
        assert!(found.iter().any(|e| e.contains("more than maxItems 1")));
    }

    #[test]
    fn null_only_where_nullable() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer", "nullable": true}, "b": {"type": "integer"}}});
        assert!(errors(schema.clone(), json!({"a": null})).is_empty());
        assert_eq!(
            errors(schema, json!({"b": null})),
            vec!["spec.b: null is not allowed here"]
        );
    }

    #[test]
    fn int_or_string() {
        let schema = json!({"x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]});
        assert!(errors(schema.clone(), json!(8080)).is_empty());
        assert!(errors(schema.clone(), json!("http")).is_empty());
        assert_eq!(errors(schema, json!(true)).len(), 1);
    }

    #[test]
    fn one_of_with_not_any_of_allows_none_or_exactly_one() {
        // The shape Istio generates for proto oneofs.
        let schema = json!({"type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [
                {"not": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
                {"required": ["a"]},
                {"required": ["b"]}]});
        assert!(errors(schema.clone(), json!({})).is_empty());
        assert!(errors(schema.clone(), json!({"a": "x"})).is_empty());
        let both = errors(schema, json!({"a": "x", "b": "y"}));
        assert_eq!(both.len(), 1, "{both:?}");
        assert!(
            both[0].contains("exactly one oneOf alternative, matches 2"),
            "{both:?}"
        );
    }

    #[test]
    fn all_of_collects_branch_errors() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}},
            "allOf": [{"required": ["a"]}]});
        assert_eq!(
            errors(schema, json!({})),
            vec!["spec.a: required field is missing"]
        );
    }

    #[test]
    fn list_map_keys_must_be_unique() {
        let schema = json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "string"}}}});
        assert!(errors(schema.clone(), json!([{"name": "a"}, {"name": "b"}])).is_empty());
        assert_eq!(
            errors(
                schema,
                json!([{"name": "a", "v": "1"}, {"name": "a", "v": "2"}])
            ),
            vec!["spec[1]: duplicate list entry [\"a\"]"]
        );
    }
}
