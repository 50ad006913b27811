//! ps:list, scale, restart.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value};

use super::Session;
use crate::error::CliError;

/// `=== <app> Processes`, then per type `--- <type>:` and `<type>.<num> <state> (<release>)`.
pub(crate) fn print_list(s: &Session, app: &str) -> Result<(), CliError> {
    let (containers, _) = s
        .client
        .list(&format!("/v1/apps/{app}/containers/"), None)?;
    let mut by_type: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for c in &containers {
        by_type
            .entry(c["type"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(c);
    }
    println!("=== {app} Processes");
    for (ptype, mut list) in by_type {
        list.sort_by_key(|c| c["num"].as_i64().unwrap_or(0));
        println!("--- {ptype}:");
        for c in list {
            let restarts = c["restarts"].as_u64().unwrap_or(0);
            let note = if restarts > 0 {
                format!(", restarted {restarts}x")
            } else {
                String::new()
            };
            println!(
                "{ptype}.{} {} ({}{note})",
                c["num"].as_i64().unwrap_or(0),
                c["state"].as_str().unwrap_or_default(),
                c["release"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub(crate) fn list(s: &Session, app: &str) -> Result<i32, CliError> {
    if crate::JSON.load(std::sync::atomic::Ordering::Relaxed) {
        let (containers, _) = s
            .client
            .list(&format!("/v1/apps/{app}/containers/"), None)?;
        super::json_output(&Value::Array(containers));
        return Ok(0);
    }
    print_list(s, app)?;
    Ok(0)
}

fn drink() -> String {
    std::env::var("DEIS_DRINK_OF_CHOICE")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "coffee".to_owned())
}

pub(crate) fn scale(s: &Session, app: &str, args: &[String]) -> Result<i32, CliError> {
    let mut body = Map::new();
    for arg in args {
        let parsed = arg.split_once('=').and_then(|(t, n)| {
            let valid = !t.is_empty() && t.chars().all(|c| ('A'..='z').contains(&c));
            valid.then_some(())?;
            n.parse::<u64>().ok().map(|n| (t.to_owned(), n))
        });
        let Some((ptype, n)) = parsed else {
            return Err(CliError::Message(format!(
                "'{arg}' does not match the pattern 'type=num', ex: web=2"
            )));
        };
        body.insert(ptype, Value::from(n));
    }
    println!("Scaling processes... but first, {}!", drink());
    let started = Instant::now();
    let body = Value::Object(body);
    super::with_progress(|| s.client.post(&format!("/v1/apps/{app}/scale/"), &body))?;
    println!("done in {}s", started.elapsed().as_secs());
    println!();
    print_list(s, app)?;
    Ok(0)
}

pub(crate) fn restart(s: &Session, app: &str, target: Option<&str>) -> Result<i32, CliError> {
    let path = match target {
        None => format!("/v1/apps/{app}/containers/restart/"),
        Some(t) => match t.split_once('.') {
            Some((ptype, num)) => format!("/v1/apps/{app}/containers/{ptype}/{num}/restart/"),
            None => format!("/v1/apps/{app}/containers/{t}/restart/"),
        },
    };
    println!("Restarting processes... but first, {}!", drink());
    let started = Instant::now();
    super::with_progress(|| s.client.post(&path, &Value::Object(Map::new())))?;
    println!("done in {}s", started.elapsed().as_secs());
    println!();
    print_list(s, app)?;
    Ok(0)
}
