//! keys:list, add, remove: your SSH public keys, which let you `git push`.

use serde_json::{Value, json};

use super::Session;
use crate::client::of_count;
use crate::error::CliError;

pub(crate) fn list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
    let (keys, count) = s.client.list("/v1/keys/", limit)?;
    if super::json_output(&Value::Array(keys.clone())) {
        return Ok(0);
    }
    println!(
        "=== {} Keys{}",
        s.settings.username,
        of_count(keys.len(), count)
    );
    for k in &keys {
        let public = k["public"].as_str().unwrap_or_default();
        // The first 16 and last 10 characters, as the Deis client shows keys.
        let chars: Vec<char> = public.chars().collect();
        let short = if chars.len() > 26 {
            let head: String = chars[..16].iter().collect();
            let tail: String = chars[chars.len() - 10..].iter().collect();
            format!("{head}...{tail}")
        } else {
            public.to_owned()
        };
        println!("{} {short}", k["id"].as_str().unwrap_or_default());
    }
    Ok(0)
}

pub(crate) fn add(s: &Session, path: Option<&str>) -> Result<i32, CliError> {
    let path = match path {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_default();
            let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(home.join(".ssh"))
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            found.retain(|p| p.extension().is_some_and(|e| e == "pub"));
            found.sort();
            if found.is_empty() {
                return Err(CliError::Message(
                    "No SSH public keys found in ~/.ssh; create one with ssh-keygen or give its path".into(),
                ));
            }
            println!("Found the following SSH public keys:");
            for (i, p) in found.iter().enumerate() {
                println!("{}) {}", i + 1, p.display());
            }
            let answer = super::prompt("Which would you like to use with Deis? ")?;
            let index: usize = answer
                .trim()
                .parse()
                .map_err(|_| CliError::Message(format!("'{answer}' is not one of the numbers")))?;
            found
                .get(index.wrapping_sub(1))
                .cloned()
                .ok_or_else(|| CliError::Message(format!("{index} is not one of the numbers")))?
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Message(format!("cannot read {}: {e}", path.display())))?;
    let public = text.trim();
    let fields: Vec<&str> = public.split_whitespace().collect();
    let valid =
        fields.len() >= 2 && (fields[0].starts_with("ssh-") || fields[0].starts_with("ecdsa-"));
    if !valid {
        return Err(CliError::Message(format!(
            "{} is not an SSH public key",
            path.display()
        )));
    }
    let id = match fields.get(2) {
        Some(comment) => (*comment).to_owned(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    print!("Uploading {name} to deis... ");
    s.client
        .post("/v1/keys/", &json!({"id": id, "public": public}))?;
    println!("done");
    Ok(0)
}

pub(crate) fn remove(s: &Session, id: &str) -> Result<i32, CliError> {
    print!("Removing {id} SSH Key... ");
    s.client.delete(&format!("/v1/keys/{id}"))?;
    println!("done");
    Ok(0)
}
