//! Config changes (§4.6, §5.2): coercion of the request, validation, and merging onto the
//! current config.

use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiResult};
use crate::db::{DbResult, json_map};

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
fn object_field(body: &Map<String, Value>, field: &str) -> ApiResult<Option<Map<String, Value>>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(ApiError::field(field, "Value must be a JSON object")),
        },
        Some(_) => Err(ApiError::field(field, "Value must be a JSON object")),
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

/// Coerces and validates a config request. Returns the change per field (`null` = remove).
pub(crate) fn parse_change(
    body: &Map<String, Value>,
) -> ApiResult<Vec<(&'static str, Map<String, Value>)>> {
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
                    Err(_) => return Err(ApiError::field(field, "CPU shares must be an integer")),
                },
                ("cpu", _) => return Err(ApiError::field(field, "CPU shares must be an integer")),
                (_, Value::Object(_) | Value::Array(_)) => {
                    return Err(ApiError::field(
                        field,
                        format!("{k}: value must be a string"),
                    ));
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

fn validate(field: &str, key: &str, value: &Value) -> ApiResult<()> {
    let fail = |message: &str| Err(ApiError::field(field, message));
    match field {
        "values" if !valid_values_key(key) => {
            fail("Config keys must start with a letter or underscore and only contain [A-z0-9_]")
        }
        "values" if key.eq_ignore_ascii_case("BUILDPACK_URL") => match value {
            Value::String(url) => {
                let repo = url.split_once('#').map_or(url.as_str(), |(repo, _)| repo);
                match deis_types::buildpack_source(repo) {
                    Ok(_) => Ok(()),
                    Err(e) => fail(&e.to_string()),
                }
            }
            _ => Ok(()),
        },
        "memory" | "cpu" if !is_process_type(key) => fail("Process types can only contain [a-z]"),
        "memory" => match value {
            Value::String(s) if !valid_memory(s) => {
                fail("Limit format: <number><unit>, where unit = B, K, M or G")
            }
            _ => Ok(()),
        },
        "cpu" => match value {
            Value::Number(n) => match n.as_u64() {
                Some(shares) if shares <= 1024 => Ok(()),
                Some(_) => fail("CPU shares must be between 0 and 1024"),
                None if n.as_i64().is_some() => fail("CPU shares must be between 0 and 1024"),
                None => fail("CPU shares must be an integer"),
            },
            _ => Ok(()),
        },
        "tags" if !key.chars().all(|c| c.is_ascii_alphabetic()) || key.is_empty() => {
            fail("Tag keys can only contain [a-z]")
        }
        "tags" => match value {
            Value::String(s) if !is_word(s) => fail("Invalid tag value"),
            _ => Ok(()),
        },
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

    fn check(body: Value, ok: bool) {
        let Value::Object(map) = body else {
            panic!("object")
        };
        assert_eq!(parse_change(&map).is_ok(), ok, "{map:?}");
    }

    #[test]
    fn validation_follows_the_reference() {
        for key in ["FOO", "_foo", "f001", "FOO_BAR_BAZ_"] {
            check(json!({"values": {key: "x"}}), true);
        }
        for key in ["123", "../../foo", "FOO/", "FOO-BAR"] {
            check(json!({"values": {key: "x"}}), false);
        }
        check(json!({"memory": {"web": "20MB"}}), true);
        check(json!({"memory": {"web": "20gb"}}), true);
        check(json!({"memory": {"web": "20MK"}}), false);
        check(json!({"memory": {"web": "20gK"}}), false);
        check(json!({"memory": {"web": null}}), true);
        check(json!({"cpu": {"web": 512}}), true);
        check(json!({"cpu": {"web": "1024"}}), true);
        check(json!({"cpu": {"web": 1025}}), false);
        check(json!({"cpu": {"web": "lots"}}), false);
        check(json!({"tags": {"environ": "prod"}}), true);
        check(json!({"tags": {"in.valid": "x"}}), false);
        check(json!({"tags": {"valid": "in\nvalid"}}), false);
        check(json!({"values": "{\"FOO\": \"bar\"}"}), true);
        check(json!({"values": [1]}), false);
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
