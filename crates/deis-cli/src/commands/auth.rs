//! auth:register, login, logout, whoami, passwd, cancel, regenerate.

use serde_json::json;

use super::{Session, prompt};
use crate::client::Client;
use crate::error::CliError;
use crate::settings::Settings;

/// `http://` unless a scheme is given.
fn controller_url(controller: &str) -> String {
    let url = if controller.contains("://") {
        controller.to_owned()
    } else {
        format!("http://{controller}")
    };
    url.trim_end_matches('/').to_owned()
}

/// `GET /v1/` must answer 401: anything else is not a Deis controller.
fn probe(client: &Client) -> Result<(), CliError> {
    match client.get("/v1/") {
        Err(CliError::Api { status, .. }) if status.starts_with("401") => Ok(()),
        Err(e @ CliError::Unreachable { .. }) => Err(e),
        _ => Err(CliError::Message(format!(
            "{} does not look like a Deis controller (GET /v1/ should answer 401)",
            client.controller
        ))),
    }
}

/// Whether two controller URLs name the same host and port (schemes aside).
fn same_host(a: &str, b: &str) -> bool {
    let host = |url: &str| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        rest.split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    host(a) == host(b)
}

fn ask(value: Option<String>, question: &str) -> Result<String, CliError> {
    match value {
        Some(v) => Ok(v),
        None => prompt(question),
    }
}

pub(crate) fn register(
    controller: &str,
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    ssl_verify: bool,
) -> Result<i32, CliError> {
    let url = controller_url(controller);
    // The probe goes without a token (with one, `GET /v1/` answers 200). The registration
    // carries the existing login's token when it is for the same controller, as the Deis
    // client's does: it lets an administrator register users when only admins may.
    probe(&Client::new(&url, None, ssl_verify, 100))?;
    let token = Settings::load()
        .filter(|s| same_host(&s.controller, &url))
        .map(|s| s.token)
        .filter(|t| !t.is_empty());
    let client = Client::new(&url, token, ssl_verify, 100);
    let username = ask(username, "username: ")?;
    let password = match password {
        Some(p) => p,
        None => {
            let first = prompt("password: ")?;
            if prompt("password (confirm): ")? != first {
                return Err(CliError::Message(
                    "Password mismatch, aborting registration.".into(),
                ));
            }
            first
        }
    };
    let email = ask(email, "email: ")?;
    let body = json!({"username": username, "password": password, "email": email});
    if let Err(e) = client.post("/v1/auth/register/", &body) {
        eprint!("Registration failed: ");
        return Err(e);
    }
    println!("Registered {username}");
    // As the Deis client: the controller was probed already.
    save_login(&client, &url, &username, &password, ssl_verify)
}

pub(crate) fn login(
    controller: &str,
    username: Option<String>,
    password: Option<String>,
    ssl_verify: bool,
) -> Result<i32, CliError> {
    let url = controller_url(controller);
    let client = Client::new(&url, None, ssl_verify, 100);
    probe(&client)?;
    let username = ask(username, "username: ")?;
    let password = ask(password, "password: ")?;
    save_login(&client, &url, &username, &password, ssl_verify)
}

/// Logs in and saves the settings file.
fn save_login(
    client: &Client,
    url: &str,
    username: &str,
    password: &str,
    ssl_verify: bool,
) -> Result<i32, CliError> {
    let reply = client.post(
        "/v1/auth/login/",
        &json!({"username": username, "password": password}),
    )?;
    let token = reply.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if token.is_empty() {
        return Err(CliError::Message("the controller sent no token".into()));
    }
    let previous = Settings::load().unwrap_or_default();
    Settings {
        username: username.to_owned(),
        ssl_verify,
        controller: url.to_owned(),
        token,
        response_limit: previous.response_limit,
    }
    .save()?;
    println!("Logged in as {username}");
    Ok(0)
}

pub(crate) fn logout() -> Result<i32, CliError> {
    Settings::delete();
    println!("Logged out");
    Ok(0)
}

pub(crate) fn whoami(s: &Session) -> Result<i32, CliError> {
    println!(
        "You are {} at {}",
        s.settings.username, s.settings.controller
    );
    Ok(0)
}

pub(crate) fn passwd(
    s: &Session,
    password: Option<String>,
    new_password: Option<String>,
) -> Result<i32, CliError> {
    let password = ask(password, "current password: ")?;
    let new_password = ask(new_password, "new password: ")?;
    let body = json!({"password": password, "new_password": new_password});
    if let Err(e) = s.client.post("/v1/auth/passwd/", &body) {
        eprint!("Password change failed: ");
        return Err(e);
    }
    println!("Password change succeeded.");
    Ok(0)
}

pub(crate) fn cancel(
    s: &Session,
    username: Option<String>,
    password: Option<String>,
    yes: bool,
) -> Result<i32, CliError> {
    let target = username
        .clone()
        .unwrap_or_else(|| s.settings.username.clone());
    let own = target == s.settings.username;
    if own && password.is_some() {
        // As the Deis client: proving the password again before cancelling oneself.
        println!("Please log in again in order to cancel this account");
        login(
            &s.settings.controller,
            Some(target.clone()),
            password,
            s.settings.ssl_verify,
        )?;
    }
    if !yes {
        let answer = prompt(&format!(
            "cancel account {target} at {}? (y/N): ",
            s.settings.controller
        ))?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            println!("Account not changed");
            return Ok(0);
        }
    }
    let session = Session {
        settings: Settings::require()?,
        client: Client::from_settings(&Settings::require()?),
    };
    let body = if own {
        json!({})
    } else {
        json!({"username": target})
    };
    session.client.delete_with("/v1/auth/cancel/", &body)?;
    if own {
        Settings::delete();
    }
    println!("Account cancelled");
    Ok(0)
}

pub(crate) fn regenerate(
    s: &Session,
    username: Option<String>,
    all: bool,
) -> Result<i32, CliError> {
    let body = match (&username, all) {
        (_, true) => json!({"all": true}),
        (Some(u), false) => json!({"username": u}),
        (None, false) => json!({}),
    };
    let reply = s.client.post("/v1/auth/tokens/", &body)?;
    if username.is_none() && !all {
        let token = reply.json()["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut settings = s.settings.clone();
        settings.token = token;
        settings.save()?;
    }
    println!("Token Regenerated");
    Ok(0)
}
