//! config, limits and tags: all three live in the app's config.

use serde_json::{Map, Value, json};

use super::{Session, aligned};
use crate::error::CliError;

/// `KEY=value` as the Deis client reads it (`^([A-z_]+[A-z0-9_]*)=([\s\S]+)$`).
fn key_value(arg: &str) -> Option<(String, String)> {
    let (key, value) = arg.split_once('=')?;
    let letter = |c: char| ('A'..='z').contains(&c) || c == '_';
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(letter);
    let rest_ok = chars.all(|c| letter(c) || c.is_ascii_digit());
    (first_ok && rest_ok && !value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
}

fn show_value(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn sorted(map: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = map
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), show_value(v))).collect())
        .unwrap_or_default();
    pairs.sort();
    pairs
}

fn print_config(app: &str, config: &Value, oneline: bool) {
    let values = sorted(&config["values"]);
    if oneline {
        let line: String = values.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!("{line}");
    } else {
        println!("=== {app} Config");
        print!("{}", aligned(&values));
    }
}

pub(crate) fn list(s: &Session, app: &str, oneline: bool) -> Result<i32, CliError> {
    let config = s.client.get(&format!("/v1/apps/{app}/config/"))?.json();
    if super::json_output(&config["values"]) {
        return Ok(0);
    }
    print_config(app, &config, oneline);
    Ok(0)
}

fn change(
    s: &Session,
    app: &str,
    what: &str,
    body: Value,
    show: fn(&str, &Value),
) -> Result<i32, CliError> {
    print!("{what}... ");
    let reply = super::with_progress(|| s.client.post(&format!("/v1/apps/{app}/config/"), &body))?;
    match &reply.release {
        Some(v) => println!("done, v{}", v.trim_start_matches('v')),
        None => println!("done"),
    }
    println!();
    show(app, &reply.json());
    Ok(0)
}

pub(crate) fn set(s: &Session, app: &str, args: &[String]) -> Result<i32, CliError> {
    let mut values = Map::new();
    for arg in args {
        match key_value(arg) {
            Some((k, v)) => {
                values.insert(k, Value::String(v));
            }
            None => println!("'{arg}' does not match the pattern 'key=var', ex: MODE=test"),
        }
    }
    if values.is_empty() {
        return Err(CliError::Message("no KEY=value given".into()));
    }
    change(
        s,
        app,
        "Creating config",
        json!({"values": values}),
        |app, c| print_config(app, c, false),
    )
}

pub(crate) fn unset(s: &Session, app: &str, keys: &[String]) -> Result<i32, CliError> {
    let values: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    change(
        s,
        app,
        "Removing config",
        json!({"values": values}),
        |app, c| print_config(app, c, false),
    )
}

fn print_limits(app: &str, config: &Value) {
    println!("=== {app} Limits");
    for (title, key) in [("Memory", "memory"), ("CPU", "cpu")] {
        println!();
        println!("--- {title}");
        let pairs = sorted(&config[key]);
        if pairs.is_empty() {
            println!("Unlimited");
        } else {
            print!("{}", aligned(&pairs));
        }
    }
}

pub(crate) fn limits_list(s: &Session, app: &str) -> Result<i32, CliError> {
    let config = s.client.get(&format!("/v1/apps/{app}/config/"))?.json();
    print_limits(app, &config);
    Ok(0)
}

pub(crate) fn limits_set(
    s: &Session,
    app: &str,
    cpu: bool,
    args: &[String],
) -> Result<i32, CliError> {
    let mut limits = Map::new();
    for arg in args {
        let Some((ptype, limit)) = arg.split_once('=') else {
            return Err(CliError::Message(format!(
                "'{arg}' does not match the pattern 'type=limit', ex: web=512M"
            )));
        };
        let value = if cpu {
            limit.parse::<u64>().map(Value::from).map_err(|_| {
                CliError::Message(format!("'{limit}' is not a number of CPU shares"))
            })?
        } else {
            Value::String(limit.to_owned())
        };
        limits.insert(ptype.to_owned(), value);
    }
    let key = if cpu { "cpu" } else { "memory" };
    change(
        s,
        app,
        "Applying limits",
        json!({ key: limits }),
        print_limits,
    )
}

pub(crate) fn limits_unset(
    s: &Session,
    app: &str,
    cpu: bool,
    types: &[String],
) -> Result<i32, CliError> {
    let limits: Map<String, Value> = types.iter().map(|t| (t.clone(), Value::Null)).collect();
    let key = if cpu { "cpu" } else { "memory" };
    change(
        s,
        app,
        "Applying limits",
        json!({ key: limits }),
        print_limits,
    )
}

fn print_tags(app: &str, config: &Value) {
    println!("=== {app} Tags");
    print!("{}", aligned(&sorted(&config["tags"])));
}

pub(crate) fn tags_list(s: &Session, app: &str) -> Result<i32, CliError> {
    let config = s.client.get(&format!("/v1/apps/{app}/config/"))?.json();
    print_tags(app, &config);
    Ok(0)
}

pub(crate) fn tags_set(s: &Session, app: &str, args: &[String]) -> Result<i32, CliError> {
    let mut tags = Map::new();
    for arg in args {
        match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                tags.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            _ => {
                return Err(CliError::Message(format!(
                    "'{arg}' does not match the pattern 'key=value', ex: environ=production"
                )));
            }
        }
    }
    change(s, app, "Applying tags", json!({"tags": tags}), print_tags)
}

pub(crate) fn tags_unset(s: &Session, app: &str, keys: &[String]) -> Result<i32, CliError> {
    let tags: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    change(s, app, "Applying tags", json!({"tags": tags}), print_tags)
}

/// `.env` lines (`KEY=value`) of the app's config.
pub(crate) fn pull(
    s: &Session,
    app: &str,
    interactive: bool,
    overwrite: bool,
) -> Result<i32, CliError> {
    let config = s.client.get(&format!("/v1/apps/{app}/config/"))?.json();
    let remote = sorted(&config["values"]);
    let path = std::path::Path::new(".env");
    let mut local: Vec<(String, String)> = Vec::new();
    if path.exists() {
        if !overwrite && !interactive {
            return Err(CliError::Message(
                ".env already exists, pass -o to overwrite".into(),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Message(format!("cannot read .env: {e}")))?;
        local = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    }
    let mut merged = if interactive {
        local.clone()
    } else {
        Vec::new()
    };
    for (k, v) in remote {
        match merged.iter_mut().find(|(lk, _)| *lk == k) {
            Some(entry) if entry.1 != v => {
                let answer =
                    super::prompt(&format!("{k}: overwrite {} with {v}? (y/N) ", entry.1))?;
                if answer.trim().eq_ignore_ascii_case("y") {
                    entry.1 = v;
                }
            }
            Some(_) => {}
            None => merged.push((k, v)),
        }
    }
    let text: String = merged.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).map_err(|e| CliError::Message(format!("cannot write .env: {e}")))?;
    Ok(0)
}

/// Sets the config from a file of `KEY=value` lines.
pub(crate) fn push(s: &Session, app: &str, path: &str) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Message(format!("cannot read {path}: {e}")))?;
    let args: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    set(s, app, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_arguments_as_the_deis_client_reads_them() {
        assert_eq!(key_value("MODE=test"), Some(("MODE".into(), "test".into())));
        assert_eq!(key_value("A=b=c d"), Some(("A".into(), "b=c d".into())));
        assert_eq!(key_value("_X1=y"), Some(("_X1".into(), "y".into())));
        assert_eq!(key_value("1A=b"), None);
        assert_eq!(key_value("A="), None);
        assert_eq!(key_value("novalue"), None);
    }
}
