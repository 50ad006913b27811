//! builds:list, create (`deis pull`): an app's builds, and deploying an image as one.

use serde_json::{Value, json};

use super::Session;
use crate::client::of_count;
use crate::error::CliError;

pub(crate) fn list(s: &Session, app: &str, limit: Option<i64>) -> Result<i32, CliError> {
    let (builds, count) = s.client.list(&format!("/v1/apps/{app}/builds/"), limit)?;
    if super::json_output(&Value::Array(builds.clone())) {
        return Ok(0);
    }
    println!("=== {app} Builds{}", of_count(builds.len(), count));
    for b in &builds {
        println!(
            "{} {}",
            b["uuid"].as_str().unwrap_or_default(),
            b["created"].as_str().unwrap_or_default()
        );
    }
    Ok(0)
}

/// `type: command` lines of a Procfile.
fn procfile(text: &str) -> serde_json::Map<String, Value> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| !k.trim().is_empty() && !k.trim_start().starts_with('#'))
        .map(|(k, v)| (k.trim().to_owned(), Value::String(v.trim().to_owned())))
        .collect()
}

pub(crate) fn create(
    s: &Session,
    app: &str,
    image: &str,
    procfile_yaml: Option<&str>,
) -> Result<i32, CliError> {
    let mut body = json!({"image": image});
    let text = match procfile_yaml {
        Some(y) => Some(y.to_owned()),
        None => std::fs::read_to_string("Procfile").ok(),
    };
    if let Some(text) = text {
        body["procfile"] = Value::Object(procfile(&text));
    }
    print!("Creating build... ");
    super::with_progress(|| s.client.post(&format!("/v1/apps/{app}/builds/"), &body))?;
    println!("done");
    Ok(0)
}
