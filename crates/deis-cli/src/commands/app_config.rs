//! The app's config resource (`/v1/apps/{app}/config/`), which config, limits and tags all
//! read and change: fetching it, its maps as sorted and aligned `KEY VALUE` pairs, and a change
//! that reports the new release.

use serde_json::Value;

use super::Session;
use crate::error::CliError;

/// The app's config as the controller sends it.
pub(crate) fn fetch(s: &Session, app: &str) -> Result<Value, CliError> {
    Ok(s.client.get(&format!("/v1/apps/{app}/config/"))?.json())
}

fn show_value(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// The pairs of a JSON object, sorted by key; strings as they are, other values as JSON.
pub(crate) fn sorted(map: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = map
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), show_value(v))).collect())
        .unwrap_or_default();
    pairs.sort();
    pairs
}

/// `KEY<pad>VALUE` lines with the key column as wide as the longest key plus 6 (as Deis).
pub(crate) fn aligned(pairs: &[(String, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 6;
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}{v}\n"))
        .collect()
}

/// Posts `body` to the app's config after `<what>... `, then `done, v<N>` and the new config as
/// `show` prints it.
pub(crate) fn change(
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
