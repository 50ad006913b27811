//! tags:list, set, unset: the app's tags, which place its containers on matching hosts.

use serde_json::{Map, Value, json};

use super::Session;
use super::app_config::{self, aligned, sorted};
use crate::error::CliError;

fn print_tags(app: &str, config: &Value) {
    println!("=== {app} Tags");
    print!("{}", aligned(&sorted(&config["tags"])));
}

pub(crate) fn list(s: &Session, app: &str) -> Result<i32, CliError> {
    print_tags(app, &app_config::fetch(s, app)?);
    Ok(0)
}

pub(crate) fn set(s: &Session, app: &str, args: &[String]) -> Result<i32, CliError> {
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
    apply(s, app, tags)
}

pub(crate) fn unset(s: &Session, app: &str, keys: &[String]) -> Result<i32, CliError> {
    let tags: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    apply(s, app, tags)
}

/// Changes the tags; a key's `null` unsets it.
fn apply(s: &Session, app: &str, tags: Map<String, Value>) -> Result<i32, CliError> {
    app_config::change(s, app, "Applying tags", json!({"tags": tags}), print_tags)
}
