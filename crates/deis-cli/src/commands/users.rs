//! users:list: every user of the controller (administrators only).

use serde_json::Value;

use super::Session;
use crate::client::of_count;
use crate::error::CliError;

pub(crate) fn list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
    let (users, count) = s.client.list("/v1/users/", limit)?;
    if super::json_output(&Value::Array(users.clone())) {
        return Ok(0);
    }
    let mut names: Vec<&str> = users
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    names.sort_unstable();
    println!("=== Users{}", of_count(names.len(), count));
    for n in names {
        println!("{n}");
    }
    Ok(0)
}
