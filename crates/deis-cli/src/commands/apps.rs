//! apps:create, list, info, destroy, transfer, open, run, logs.

use std::time::Instant;

use serde_json::{Value, json};

use super::{Session, prompt};
use crate::appname;
use crate::client::of_count;
use crate::error::CliError;

pub(crate) fn create(
    s: &Session,
    id: Option<String>,
    no_remote: bool,
    remote: &str,
    buildpack: Option<String>,
) -> Result<i32, CliError> {
    print!("Creating Application... ");
    let body = match &id {
        Some(id) => json!({"id": id}),
        None => json!({}),
    };
    let reply = super::with_progress(|| s.client.post("/v1/apps/", &body))?;
    let app = reply.json()["id"].as_str().unwrap_or_default().to_owned();
    println!("done, created {app}");
    if let Some(url) = buildpack {
        s.client.post(
            &format!("/v1/apps/{app}/config/"),
            &json!({"values": {"BUILDPACK_URL": url}}),
        )?;
    }
    if !no_remote {
        super::git::add_remote(s, &app, remote)?;
    }
    println!(
        "remote available at {}",
        appname::remote_url(&s.settings.controller, &app)
    );
    Ok(0)
}

pub(crate) fn list(s: &Session, limit: Option<i64>) -> Result<i32, CliError> {
    let (apps, count) = s.client.list("/v1/apps/", limit)?;
    if super::json_output(&Value::Array(apps.clone())) {
        return Ok(0);
    }
    let mut ids: Vec<&str> = apps.iter().filter_map(|a| a["id"].as_str()).collect();
    ids.sort_unstable();
    println!("=== Apps{}", of_count(ids.len(), count));
    for id in ids {
        println!("{id}");
    }
    Ok(0)
}

pub(crate) fn info(s: &Session, app: &str) -> Result<i32, CliError> {
    let a = s.client.get(&format!("/v1/apps/{app}/"))?.json();
    if super::json_output(&a) {
        return Ok(0);
    }
    println!("=== {app} Application");
    for key in ["updated", "uuid", "created", "url", "owner", "id"] {
        let value = a[key]
            .as_str()
            .map_or_else(|| a[key].to_string(), str::to_owned);
        println!("{:<10}{value}", format!("{key}:"));
    }
    println!();
    super::ps::print_list(s, app)?;
    println!();
    super::domains::print_list(s, app)?;
    println!();
    Ok(0)
}

pub(crate) fn destroy(
    s: &Session,
    flag: &crate::cli::AppFlag,
    confirm: Option<String>,
) -> Result<i32, CliError> {
    let app = s.app(flag);
    let from_remote = flag
        .app
        .is_none()
        .then(|| appname::remote_for(&s.settings.controller))
        .flatten();
    let confirm = match confirm {
        Some(c) => c,
        None => {
            println!(" !    WARNING: Potentially Destructive Action");
            println!(" !    This command will destroy the application: {app}");
            println!(
                " !    To proceed, type \"{app}\" or re-run this command with --confirm={app}"
            );
            println!();
            prompt("> ")?
        }
    };
    if confirm != app {
        return Err(CliError::Message(format!(
            "App {app} does not match confirm {confirm}, aborting."
        )));
    }
    let started = Instant::now();
    println!("Destroying {app}...");
    super::with_progress(|| s.client.delete(&format!("/v1/apps/{app}/")))?;
    println!("done in {}s", started.elapsed().as_secs());
    if let Some((remote, remote_app)) = from_remote
        && remote_app == app
    {
        let _ = std::process::Command::new("git")
            .args(["remote", "remove", &remote])
            .output();
        println!("Git remote {remote} removed");
    }
    Ok(0)
}

pub(crate) fn run(s: &Session, app: &str, command: &str) -> Result<i32, CliError> {
    println!("Running '{command}'...");
    let reply = s.client.post(
        &format!("/v1/apps/{app}/run/"),
        &json!({"command": command}),
    )?;
    let result = reply.json();
    let code = result[0].as_i64().unwrap_or(1);
    print!("{}", result[1].as_str().unwrap_or_default());
    Ok(i32::try_from(code).unwrap_or(1))
}

pub(crate) fn logs(
    s: &Session,
    app: &str,
    lines: Option<u32>,
    follow: bool,
) -> Result<i32, CliError> {
    if follow {
        use std::io::Write;
        let path = format!(
            "/v1/apps/{app}/logs/?follow=true&log_lines={}",
            lines.unwrap_or(100)
        );
        s.client.stream_lines(&path, |line| {
            println!("{line}");
            let _ = std::io::stdout().flush();
        })?;
        return Ok(0);
    }
    let path = match lines {
        Some(n) => format!("/v1/apps/{app}/logs/?log_lines={n}"),
        None => format!("/v1/apps/{app}/logs/"),
    };
    let reply = s.client.get(&path)?;
    if reply.status == 204 || reply.text.is_empty() {
        println!("No logs for {app} yet.");
        return Ok(0);
    }
    let text = match reply.json() {
        Value::String(text) => text,
        _ => reply.text,
    };
    for line in text.lines() {
        println!("{line}");
    }
    Ok(0)
}

pub(crate) fn transfer(s: &Session, app: &str, user: &str) -> Result<i32, CliError> {
    print!("Transferring {app} to {user}... ");
    s.client
        .post(&format!("/v1/apps/{app}/"), &json!({"owner": user}))?;
    println!("done");
    Ok(0)
}

pub(crate) fn open(s: &Session, app: &str) -> Result<i32, CliError> {
    let a = s.client.get(&format!("/v1/apps/{app}/"))?.json();
    let url = format!("http://{}", a["url"].as_str().unwrap_or_default());
    // Opening a browser is a convenience; the URL is printed whatever happens.
    let opened = std::process::Command::new("xdg-open")
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !opened {
        println!("{url}");
    }
    Ok(0)
}
