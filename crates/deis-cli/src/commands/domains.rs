//! domains:list, add, remove: the custom domains an app answers to.

use serde_json::{Value, json};

use super::Session;
use crate::error::CliError;

/// `=== <app> Domains`, then the domains in order.
pub(crate) fn print_list(s: &Session, app: &str) -> Result<(), CliError> {
    let (domains, _) = s.client.list(&format!("/v1/apps/{app}/domains/"), None)?;
    let mut names: Vec<&str> = domains
        .iter()
        .filter_map(|d| d["domain"].as_str())
        .collect();
    names.sort_unstable();
    println!("=== {app} Domains");
    for d in names {
        println!("{d}");
    }
    Ok(())
}

pub(crate) fn list(s: &Session, app: &str) -> Result<i32, CliError> {
    if crate::JSON.load(std::sync::atomic::Ordering::Relaxed) {
        let (domains, _) = s.client.list(&format!("/v1/apps/{app}/domains/"), None)?;
        super::json_output(&Value::Array(domains));
        return Ok(0);
    }
    print_list(s, app)?;
    Ok(0)
}

pub(crate) fn add(s: &Session, app: &str, domain: &str) -> Result<i32, CliError> {
    print!("Adding {domain} to {app}... ");
    s.client.post(
        &format!("/v1/apps/{app}/domains/"),
        &json!({"domain": domain}),
    )?;
    println!("done");
    Ok(0)
}

pub(crate) fn remove(s: &Session, app: &str, domain: &str) -> Result<i32, CliError> {
    print!("Removing {domain} from {app}... ");
    s.client
        .delete(&format!("/v1/apps/{app}/domains/{domain}"))?;
    println!("done");
    Ok(0)
}
