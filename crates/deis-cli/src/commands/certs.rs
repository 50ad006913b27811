//! certs:list, add, remove: TLS certificates for custom domains.

use serde_json::{Value, json};

use super::Session;
use crate::error::CliError;

pub(crate) fn list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
    let (certs, _) = s.client.list("/v1/certs/", limit)?;
    if super::json_output(&Value::Array(certs.clone())) {
        return Ok(0);
    }
    if certs.is_empty() {
        println!("No certs");
        return Ok(0);
    }
    let rows: Vec<(String, String)> = certs
        .iter()
        .map(|c| {
            (
                c["common_name"].as_str().unwrap_or_default().to_owned(),
                c["expires"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let width = rows
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .max("Common Name".len());
    println!("{:<width$}  Expires", "Common Name");
    println!(
        "{}  {}",
        "-".repeat(width),
        "-".repeat(
            "Expires"
                .len()
                .max(rows.iter().map(|r| r.1.len()).max().unwrap_or(0))
        )
    );
    for (cn, expires) in rows {
        println!("{cn:<width$}  {expires}");
    }
    Ok(0)
}

pub(crate) fn add(
    s: &Session,
    cert: &str,
    key: &str,
    common_name: Option<String>,
    sans: &[String],
) -> Result<i32, CliError> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Message(format!("cannot read {path}: {e}")))
    };
    let (certificate, key) = (read(cert)?, read(key)?);
    print!("Adding SSL endpoint... ");
    let mut names: Vec<Option<String>> = vec![common_name];
    names.extend(sans.iter().map(|n| Some(n.clone())));
    for name in names {
        let mut body = json!({"certificate": certificate, "key": key});
        if let Some(name) = name {
            body["common_name"] = Value::String(name);
        }
        s.client.post("/v1/certs/", &body)?;
    }
    println!("done");
    Ok(0)
}

pub(crate) fn remove(s: &Session, common_name: &str) -> Result<i32, CliError> {
    print!("Removing {common_name}... ");
    s.client.delete(&format!("/v1/certs/{common_name}"))?;
    println!("done");
    Ok(0)
}
