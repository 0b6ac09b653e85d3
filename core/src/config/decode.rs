//! Decoding a parsed JSON document into [`FilterConfig`]: defaults filled in, unknown fields
//! refused, externally tagged enums (`{"header": "x"}`), and every error naming the path of its
//! field. Each key source decodes itself (`crate::sources`).

use super::json::Value;
use super::{
    ConfigError, FilterConfig, HashMode, IssueCookie, KeySource, OnMissing, Reject, SameSite,
};

/// A decoded value or the error that stopped decoding.
pub(crate) type Decoded<T> = Result<T, ConfigError>;

/// An error at `path`.
pub(crate) fn error(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// `value` is not of the `expected` type.
pub(crate) fn invalid_type(path: &str, value: &Value, expected: &str) -> ConfigError {
    error(
        path,
        format!("invalid type: {}, expected {expected}", value.describe()),
    )
}

/// The members of an object, taken one by one; what is left at the end is an unknown field.
pub(crate) struct Fields<'v> {
    path: String,
    members: Vec<(&'v str, &'v Value)>,
}

impl<'v> Fields<'v> {
    pub(crate) fn of(value: &'v Value, path: &str, expected: &str) -> Decoded<Fields<'v>> {
        match value {
            Value::Object(members) => Ok(Fields {
                path: path.to_owned(),
                members: members
                    .iter()
                    .map(|(name, value)| (name.as_str(), value))
                    .collect(),
            }),
            other => Err(invalid_type(path, other, expected)),
        }
    }

    /// Removes and returns field `name` with its path.
    fn take(&mut self, name: &str) -> Option<(&'v Value, String)> {
        let index = self
            .members
            .iter()
            .position(|(member, _)| *member == name)?;
        let (_, value) = self.members.remove(index);
        Some((value, join(&self.path, name)))
    }

    /// Field `name` decoded with `decode`, or `default()` when absent.
    pub(crate) fn field<T>(
        &mut self,
        name: &str,
        decode: impl FnOnce(&Value, &str) -> Decoded<T>,
        default: impl FnOnce() -> T,
    ) -> Decoded<T> {
        match self.take(name) {
            Some((value, path)) => decode(value, &path),
            None => Ok(default()),
        }
    }

    /// Fails on the first member nobody took.
    pub(crate) fn finish(self, known: &[&str]) -> Decoded<()> {
        match self.members.first() {
            None => Ok(()),
            Some((name, _)) => Err(error(
                &join(&self.path, name),
                format!(
                    "unknown field `{name}`, expected one of {}",
                    quoted_list(known)
                ),
            )),
        }
    }
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one member of an externally tagged enum object (`{"header": "x"}`).
pub(crate) fn single_member<'v>(
    value: &'v Value,
    path: &str,
    variants: &[&str],
) -> Decoded<(&'v str, &'v Value, String)> {
    let expected = format!("an object with one of {}", quoted_list(variants));
    match value {
        Value::Object(members) => match members.as_slice() {
            [(name, inner)] if variants.contains(&name.as_str()) => {
                Ok((name, inner, join(path, name)))
            }
            [(name, _)] => Err(error(
                path,
                format!(
                    "unknown variant `{name}`, expected one of {}",
                    quoted_list(variants)
                ),
            )),
            _ => Err(error(
                path,
                format!(
                    "invalid value: an object with {} fields, expected {expected}",
                    members.len()
                ),
            )),
        },
        other => Err(invalid_type(path, other, &expected)),
    }
}

/// A string.
pub(crate) fn string(value: &Value, path: &str) -> Decoded<String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        other => Err(invalid_type(path, other, "a string")),
    }
}

fn boolean(value: &Value, path: &str) -> Decoded<bool> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        other => Err(invalid_type(path, other, "a boolean")),
    }
}

/// A non-negative integer no larger than `max`.
pub(crate) fn unsigned(value: &Value, path: &str, max: u64) -> Decoded<u64> {
    let Value::Number(text) = value else {
        return Err(invalid_type(path, value, "an integer"));
    };
    if text.contains(['.', 'e', 'E']) {
        return Err(invalid_type(path, value, "an integer"));
    }
    match text.parse::<u64>() {
        Ok(number) if number <= max => Ok(number),
        _ => Err(error(
            path,
            format!("invalid value: {text}, expected an integer from 0 to {max}"),
        )),
    }
}

pub(super) fn filter_config(value: &Value) -> Decoded<FilterConfig> {
    let mut fields = Fields::of(value, "", "an object")?;
    let defaults = FilterConfig::with_keys(Vec::new());
    let keys = fields.field("keys", key_sources, Vec::new)?;
    let lowercase = fields.field("lowercase", boolean, || defaults.lowercase)?;
    let max_key_length = fields.field(
        "maxKeyLength",
        |value, path| unsigned(value, path, usize::MAX as u64).map(|number| number as usize),
        || defaults.max_key_length,
    )?;
    let output_header = fields.field("outputHeader", string, || defaults.output_header.clone())?;
    let hash = fields.field("hash", hash_mode, || defaults.hash)?;
    let on_missing = fields.field("onMissing", on_missing, OnMissing::default)?;
    let max_body_bytes = fields.field(
        "maxBodyBytes",
        |value, path| unsigned(value, path, usize::MAX as u64).map(|number| number as usize),
        || defaults.max_body_bytes,
    )?;
    fields.finish(&[
        "keys",
        "lowercase",
        "maxKeyLength",
        "outputHeader",
        "hash",
        "onMissing",
        "maxBodyBytes",
    ])?;
    Ok(FilterConfig {
        keys,
        lowercase,
        max_key_length,
        output_header,
        hash,
        on_missing,
        max_body_bytes,
    })
}

/// A list of key sources (`keys`, or a composite's parts).
pub(crate) fn key_sources(value: &Value, path: &str) -> Decoded<Vec<KeySource>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| crate::sources::decode(item, &format!("{path}[{index}]")))
            .collect(),
        other => Err(invalid_type(path, other, "an array of key sources")),
    }
}

fn hash_mode(value: &Value, path: &str) -> Decoded<HashMode> {
    match value {
        Value::String(text) if text == "xxh64" => Ok(HashMode::Xxh64),
        Value::String(text) if text == "raw" => Ok(HashMode::Raw),
        Value::String(text) => Err(error(
            path,
            format!("unknown variant `{text}`, expected `xxh64` or `raw`"),
        )),
        other => Err(invalid_type(path, other, "`xxh64` or `raw`")),
    }
}

fn on_missing(value: &Value, path: &str) -> Decoded<OnMissing> {
    if let Value::String(text) = value {
        return match text.as_str() {
            "passThrough" => Ok(OnMissing::PassThrough),
            other => Err(error(
                path,
                format!(
                    "unknown variant `{other}`, expected `passThrough`, `reject` or `issueCookie`"
                ),
            )),
        };
    }
    let (variant, inner, inner_path) =
        single_member(value, path, &["passThrough", "reject", "issueCookie"])?;
    match variant {
        "reject" => reject(inner, &inner_path).map(OnMissing::Reject),
        "issueCookie" => issue_cookie(inner, &inner_path).map(OnMissing::IssueCookie),
        _ => match inner {
            Value::Null => Ok(OnMissing::PassThrough),
            other => Err(invalid_type(&inner_path, other, "null")),
        },
    }
}

fn reject(value: &Value, path: &str) -> Decoded<Reject> {
    let defaults = Reject::default();
    let mut fields = Fields::of(value, path, "an object")?;
    let status = fields.field(
        "status",
        |value, path| unsigned(value, path, u64::from(u16::MAX)),
        || u64::from(defaults.status),
    )?;
    let body = fields.field("body", string, || defaults.body.clone())?;
    fields.finish(&["status", "body"])?;
    Ok(Reject {
        status: status as u16,
        body,
    })
}

fn issue_cookie(value: &Value, path: &str) -> Decoded<IssueCookie> {
    let defaults = IssueCookie::default();
    let mut fields = Fields::of(value, path, "an object")?;
    let cookie = IssueCookie {
        name: fields.field("name", string, || defaults.name.clone())?,
        ttl: fields.field("ttl", string, || defaults.ttl.clone())?,
        path: fields.field("path", string, || defaults.path.clone())?,
        http_only: fields.field("httpOnly", boolean, || defaults.http_only)?,
        secure: fields.field("secure", boolean, || defaults.secure)?,
        same_site: fields.field("sameSite", same_site, || defaults.same_site)?,
    };
    fields.finish(&["name", "ttl", "path", "httpOnly", "secure", "sameSite"])?;
    Ok(cookie)
}

fn same_site(value: &Value, path: &str) -> Decoded<SameSite> {
    match value {
        Value::String(text) => match text.as_str() {
            "Strict" => Ok(SameSite::Strict),
            "Lax" => Ok(SameSite::Lax),
            "None" => Ok(SameSite::None),
            other => Err(error(
                path,
                format!("unknown variant `{other}`, expected `Strict`, `Lax` or `None`"),
            )),
        },
        other => Err(invalid_type(path, other, "`Strict`, `Lax` or `None`")),
    }
}
