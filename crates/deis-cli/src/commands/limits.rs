//! limits:list, set, unset: the app's memory and CPU limits per process type.

use serde_json::{Map, Value, json};

use super::Session;
use super::app_config::{self, aligned, sorted};
use crate::error::CliError;

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

pub(crate) fn list(s: &Session, app: &str) -> Result<i32, CliError> {
    print_limits(app, &app_config::fetch(s, app)?);
    Ok(0)
}

pub(crate) fn set(s: &Session, app: &str, cpu: bool, args: &[String]) -> Result<i32, CliError> {
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
    apply(s, app, cpu, limits)
}

pub(crate) fn unset(s: &Session, app: &str, cpu: bool, types: &[String]) -> Result<i32, CliError> {
    let limits: Map<String, Value> = types.iter().map(|t| (t.clone(), Value::Null)).collect();
    apply(s, app, cpu, limits)
}

/// Changes the CPU (`cpu`) or memory limits; a type's `null` unsets it.
fn apply(s: &Session, app: &str, cpu: bool, limits: Map<String, Value>) -> Result<i32, CliError> {
    let key = if cpu { "cpu" } else { "memory" };
    app_config::change(
        s,
        app,
        "Applying limits",
        json!({ key: limits }),
        print_limits,
    )
}
