//! Config changes (§4.6, §5.2): coercion of the request, validation, and merging onto the
//! current config.

use deis_types::BuildpackUrlError;
use serde_json::{Map, Value};

use crate::db::{DbResult, json_map};

/// Why a config change is refused; the text is the Deis API's, under the field
/// [`ConfigError::field`] names (`values`, `memory`, `cpu` or `tags`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("Value must be a JSON object")]
    NotAnObject { field: &'static str },
    #[error("{key}: value must be a string")]
    NotAString { field: &'static str, key: String },
    #[error("Config keys must start with a letter or underscore and only contain [A-z0-9_]")]
    ValuesKey { key: String },
    #[error(transparent)]
    Buildpack(#[from] BuildpackUrlError),
    #[error("Process types can only contain [a-z]")]
    ProcessType { field: &'static str, key: String },
    #[error("Limit format: <number><unit>, where unit = B, K, M or G")]
    MemoryFormat { key: String, value: String },
    #[error("CPU shares must be an integer")]
    CpuNotInteger { key: String },
    #[error("CPU shares must be between 0 and 1024")]
    CpuRange { key: String },
    #[error("Tag keys can only contain [a-z]")]
    TagKey { key: String },
    #[error("Invalid tag value")]
    TagValue { key: String, value: String },
}

impl ConfigError {
    /// The request field the refusal is about.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            ConfigError::NotAnObject { field }
            | ConfigError::NotAString { field, .. }
            | ConfigError::ProcessType { field, .. } => field,
            ConfigError::ValuesKey { .. } | ConfigError::Buildpack(_) => "values",
            ConfigError::MemoryFormat { .. } => "memory",
            ConfigError::CpuNotInteger { .. } | ConfigError::CpuRange { .. } => "cpu",
            ConfigError::TagKey { .. } | ConfigError::TagValue { .. } => "tags",
        }
    }
}

/// The four maps of a config.
pub(crate) const FIELDS: [&str; 4] = ["values", "memory", "cpu", "tags"];

/// A config's maps.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Maps {
    pub(crate) values: Map<String, Value>,
    pub(crate) memory: Map<String, Value>,
    pub(crate) cpu: Map<String, Value>,
    pub(crate) tags: Map<String, Value>,
}

impl Maps {
    pub(crate) fn from_row(row: &crate::db::Config) -> DbResult<Maps> {
        Ok(Maps {
            values: json_map(&row.config_values)?,
            memory: json_map(&row.memory)?,
            cpu: json_map(&row.cpu)?,
            tags: json_map(&row.tags)?,
        })
    }

    fn field_mut(&mut self, name: &str) -> &mut Map<String, Value> {
        match name {
            "values" => &mut self.values,
            "memory" => &mut self.memory,
            "cpu" => &mut self.cpu,
            _ => &mut self.tags,
        }
    }
}

/// The values of a stored `values` column as string pairs (for the environment and the store).
pub(crate) fn string_pairs(text: &str) -> DbResult<Vec<(String, String)>> {
    Ok(json_map(text)?
        .into_iter()
        .map(|(k, v)| (k, plain(&v)))
        .collect())
}

/// A JSON scalar as the text Deis stores (numbers in decimal, booleans as Python prints them).
pub(crate) fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One field of the request as an object: an object, or a string holding one.
fn object_field(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(ConfigError::NotAnObject { field }),
        },
        Some(_) => Err(ConfigError::NotAnObject { field }),
    }
}

fn is_process_type(k: &str) -> bool {
    k.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
}

fn valid_values_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    let first = bytes.next();
    first.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_memory(v: &str) -> bool {
    let upper = v.to_ascii_uppercase();
    let digits = upper.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &upper[digits..];
    digits > 0 && matches!(unit, "MB" | "KB" | "GB" | "B" | "K" | "M" | "G")
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A parsed config change: per field, the keys to set and (as `null`) to remove.
pub(crate) type Changes = Vec<(&'static str, Map<String, Value>)>;

/// Coerces and validates a config request. Returns the change per field (`null` = remove).
pub(crate) fn parse_change(body: &Map<String, Value>) -> Result<Changes, ConfigError> {
    let mut changes = Vec::new();
    for field in FIELDS {
        let Some(map) = object_field(body, field)? else {
            continue;
        };
        let mut out = Map::new();
        for (k, v) in map {
            let coerced = match (field, &v) {
                (_, Value::Null) => Value::Null,
                ("cpu", Value::Number(n)) => Value::Number(n.clone()),
                ("cpu", Value::String(s)) => match s.parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return Err(ConfigError::CpuNotInteger { key: k }),
                },
                ("cpu", _) => return Err(ConfigError::CpuNotInteger { key: k }),
                (_, Value::Object(_) | Value::Array(_)) => {
                    return Err(ConfigError::NotAString { field, key: k });
                }
                (_, other) => Value::String(plain(other)),
            };
            validate(field, &k, &coerced)?;
            out.insert(k, coerced);
        }
        changes.push((field, out));
    }
    Ok(changes)
}

fn validate(field: &'static str, key: &str, value: &Value) -> Result<(), ConfigError> {
    let k = || key.to_owned();
    match (field, value) {
        ("values", _) if !valid_values_key(key) => Err(ConfigError::ValuesKey { key: k() }),
        ("values", Value::String(url)) if key.eq_ignore_ascii_case("BUILDPACK_URL") => {
            let repo = url.split_once('#').map_or(url.as_str(), |(repo, _)| repo);
            deis_types::buildpack_source(repo)?;
            Ok(())
        }
        ("memory" | "cpu", _) if !is_process_type(key) => {
            Err(ConfigError::ProcessType { field, key: k() })
        }
        ("memory", Value::String(s)) if !valid_memory(s) => Err(ConfigError::MemoryFormat {
            key: k(),
            value: s.clone(),
        }),
        ("cpu", Value::Number(n)) => match n.as_u64() {
            Some(shares) if shares <= 1024 => Ok(()),
            Some(_) => Err(ConfigError::CpuRange { key: k() }),
            None if n.as_i64().is_some() => Err(ConfigError::CpuRange { key: k() }),
            None => Err(ConfigError::CpuNotInteger { key: k() }),
        },
        ("tags", _) if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) => {
            Err(ConfigError::TagKey { key: k() })
        }
        ("tags", Value::String(s)) if !is_word(s) => Err(ConfigError::TagValue {
            key: k(),
            value: s.clone(),
        }),
        _ => Ok(()),
    }
}

/// Applies a parsed change to a copy of `base`: keys set, `null` keys removed.
pub(crate) fn merge(base: &Maps, changes: &[(&'static str, Map<String, Value>)]) -> Maps {
    let mut merged = base.clone();
    for (field, change) in changes {
        let target = merged.field_mut(field);
        for (k, v) in change {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Checks a request: `None` when it is valid, else the field it is refused under.
    fn check(body: Value, refused: Option<&str>) {
        let Value::Object(map) = body else {
            panic!("object")
        };
        let field = parse_change(&map).err().map(|e| e.field());
        assert_eq!(field, refused, "{map:?}");
    }

    #[test]
    fn validation_follows_the_reference() {
        for key in ["FOO", "_foo", "f001", "FOO_BAR_BAZ_"] {
            check(json!({"values": {key: "x"}}), None);
        }
        for key in ["123", "../../foo", "FOO/", "FOO-BAR"] {
            check(json!({"values": {key: "x"}}), Some("values"));
        }
        check(json!({"memory": {"web": "20MB"}}), None);
        check(json!({"memory": {"web": "20gb"}}), None);
        check(json!({"memory": {"web": "20MK"}}), Some("memory"));
        check(json!({"memory": {"web": "20gK"}}), Some("memory"));
        check(json!({"memory": {"web": null}}), None);
        check(json!({"memory": {"Web": "20M"}}), Some("memory"));
        check(json!({"cpu": {"web": 512}}), None);
        check(json!({"cpu": {"web": "1024"}}), None);
        check(json!({"cpu": {"web": 1025}}), Some("cpu"));
        check(json!({"cpu": {"web": "lots"}}), Some("cpu"));
        check(json!({"tags": {"environ": "prod"}}), None);
        check(json!({"tags": {"in.valid": "x"}}), Some("tags"));
        check(json!({"tags": {"valid": "in\nvalid"}}), Some("tags"));
        check(json!({"values": "{\"FOO\": \"bar\"}"}), None);
        check(json!({"values": [1]}), Some("values"));
        check(
            json!({"values": {"BUILDPACK_URL": "ssh://x/y"}}),
            Some("values"),
        );
    }

    #[test]
    fn merge_sets_and_removes() {
        let base = Maps {
            values: json!({"A": "1", "B": "2"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Maps::default()
        };
        let Value::Object(body) = json!({"values": {"A": null, "C": 3, "D": true}}) else {
            panic!("object")
        };
        let merged = merge(&base, &parse_change(&body).expect("valid"));
        assert_eq!(
            Value::Object(merged.values),
            json!({"B": "2", "C": "3", "D": "True"})
        );
    }
}
