//! config:list, set, unset, pull, push: the app's environment values.

use serde_json::{Map, Value, json};

use super::Session;
use super::app_config::{self, aligned, sorted};
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
    let config = app_config::fetch(s, app)?;
    if super::json_output(&config["values"]) {
        return Ok(0);
    }
    print_config(app, &config, oneline);
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
    apply(s, app, "Creating config", values)
}

pub(crate) fn unset(s: &Session, app: &str, keys: &[String]) -> Result<i32, CliError> {
    let values: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    apply(s, app, "Removing config", values)
}

/// Changes the config values; a key's `null` unsets it.
fn apply(s: &Session, app: &str, what: &str, values: Map<String, Value>) -> Result<i32, CliError> {
    app_config::change(s, app, what, json!({"values": values}), |app, c| {
        print_config(app, c, false)
    })
}

/// `.env` lines (`KEY=value`) of the app's config.
pub(crate) fn pull(
    s: &Session,
    app: &str,
    interactive: bool,
    overwrite: bool,
) -> Result<i32, CliError> {
    let config = app_config::fetch(s, app)?;
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
