//! domains, keys, perms, builds, users, git:remote.

use serde_json::{Value, json};

use super::Session;
use crate::cli::AppFlag;
use crate::client::of_count;
use crate::error::CliError;

pub(crate) fn print_domains(s: &Session, app: &str) -> Result<(), CliError> {
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

pub(crate) fn domains_list(s: &Session, app: &str) -> Result<i32, CliError> {
    if crate::JSON.load(std::sync::atomic::Ordering::Relaxed) {
        let (domains, _) = s.client.list(&format!("/v1/apps/{app}/domains/"), None)?;
        super::json_output(&Value::Array(domains));
        return Ok(0);
    }
    print_domains(s, app)?;
    Ok(0)
}

pub(crate) fn domains_add(s: &Session, app: &str, domain: &str) -> Result<i32, CliError> {
    print!("Adding {domain} to {app}... ");
    s.client.post(
        &format!("/v1/apps/{app}/domains/"),
        &json!({"domain": domain}),
    )?;
    println!("done");
    Ok(0)
}

pub(crate) fn domains_remove(s: &Session, app: &str, domain: &str) -> Result<i32, CliError> {
    print!("Removing {domain} from {app}... ");
    s.client
        .delete(&format!("/v1/apps/{app}/domains/{domain}"))?;
    println!("done");
    Ok(0)
}

pub(crate) fn keys_list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
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

pub(crate) fn keys_add(s: &Session, path: Option<&str>) -> Result<i32, CliError> {
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

pub(crate) fn keys_remove(s: &Session, id: &str) -> Result<i32, CliError> {
    print!("Removing {id} SSH Key... ");
    s.client.delete(&format!("/v1/keys/{id}"))?;
    println!("done");
    Ok(0)
}

pub(crate) fn perms_list(s: &Session, flag: &AppFlag, admin: bool) -> Result<i32, CliError> {
    let mut users: Vec<String> = if admin {
        let (results, _) = s.client.list("/v1/admin/perms/", None)?;
        results
            .iter()
            .filter_map(|u| u["username"].as_str().map(str::to_owned))
            .collect()
    } else {
        let app = s.app(flag);
        let reply = s.client.get(&format!("/v1/apps/{app}/perms/"))?.json();
        reply["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    users.sort();
    if admin {
        println!("=== Administrators");
    } else {
        println!("=== {}'s Users", s.app(flag));
    }
    for u in users {
        println!("{u}");
    }
    Ok(0)
}

pub(crate) fn perms_change(
    s: &Session,
    flag: &AppFlag,
    admin: bool,
    user: &str,
    add: bool,
) -> Result<i32, CliError> {
    let (collection, target) = if admin {
        (
            "/v1/admin/perms/".to_owned(),
            "system administrators".to_owned(),
        )
    } else {
        let app = s.app(flag);
        (
            format!("/v1/apps/{app}/perms/"),
            format!("{app} collaborators"),
        )
    };
    if add {
        print!("Adding {user} to {target}... ");
        s.client.post(&collection, &json!({"username": user}))?;
    } else {
        print!("Removing {user} from {target}... ");
        s.client.delete(&format!("{collection}{user}/"))?;
    }
    println!("done");
    Ok(0)
}

pub(crate) fn builds_list(s: &Session, app: &str, limit: Option<i64>) -> Result<i32, CliError> {
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

pub(crate) fn builds_create(
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

pub(crate) fn users_list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
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

pub(crate) fn git_remote(s: &Session, app: &str, remote: &str) -> Result<i32, CliError> {
    super::apps::add_remote(s, app, remote)?;
    Ok(0)
}

pub(crate) fn certs_list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
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

pub(crate) fn certs_add(
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

pub(crate) fn certs_remove(s: &Session, common_name: &str) -> Result<i32, CliError> {
    print!("Removing {common_name}... ");
    s.client.delete(&format!("/v1/certs/{common_name}"))?;
    println!("done");
    Ok(0)
}
