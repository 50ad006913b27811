//! releases:list, info, rollback.

use serde_json::json;

use super::Session;
use crate::client::of_count;
use crate::error::CliError;

fn version_number(v: &str) -> Result<u64, CliError> {
    v.trim_start_matches('v')
        .parse()
        .map_err(|_| CliError::Message(format!("'{v}' is not a release version (v3 or 3)")))
}

pub(crate) fn list(s: &Session, app: &str, limit: Option<i64>) -> Result<i32, CliError> {
    let (releases, count) = s.client.list(&format!("/v1/apps/{app}/releases/"), limit)?;
    if super::json_output(&serde_json::Value::Array(releases.clone())) {
        return Ok(0);
    }
    println!("=== {app} Releases{}", of_count(releases.len(), count));
    let rows: Vec<(String, String, String)> = releases
        .iter()
        .map(|r| {
            (
                format!("v{}", r["version"].as_i64().unwrap_or(0)),
                r["created"].as_str().unwrap_or_default().to_owned(),
                r["summary"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (v, created, summary) in rows {
        println!("{v:<width$}  {created}  {summary}");
    }
    Ok(0)
}

pub(crate) fn info(s: &Session, app: &str, version: &str) -> Result<i32, CliError> {
    let n = version_number(version)?;
    let r = s
        .client
        .get(&format!("/v1/apps/{app}/releases/v{n}/"))?
        .json();
    println!("=== {app} Release v{n}");
    let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
    if !field("build").is_empty() {
        println!("{:<10}{}", "build:", field("build"));
    }
    for key in ["config", "owner", "created", "summary", "updated", "uuid"] {
        println!("{:<10}{}", format!("{key}:"), field(key));
    }
    Ok(0)
}

pub(crate) fn rollback(s: &Session, app: &str, version: Option<&str>) -> Result<i32, CliError> {
    let body = match version {
        Some(v) => {
            let n = version_number(v)?;
            print!("Rolling back to v{n}... ");
            json!({"version": n})
        }
        None => {
            print!("Rolling back one release... ");
            json!({})
        }
    };
    let reply = super::with_progress(|| {
        s.client
            .post(&format!("/v1/apps/{app}/releases/rollback/"), &body)
    })?;
    let new = reply.json()["version"].as_i64().unwrap_or(0);
    println!("done, v{new}");
    Ok(0)
}
