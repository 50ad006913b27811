//! Which app a command is about: `-a/--app`, else the `deis` git remote pointing at this
//! controller (`ssh://git@<host>:2222/<app>.git`), else the current directory's name.

use std::process::Command;

/// The app for a command.
pub(crate) fn detect(flag: Option<&str>, controller: &str) -> String {
    if let Some(app) = flag.filter(|a| !a.is_empty()) {
        return app.to_owned();
    }
    if let Some(app) = from_remotes(controller) {
        return app;
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_default()
}

/// Whether the app came from a git remote (and which remote).
pub(crate) fn remote_for(controller: &str) -> Option<(String, String)> {
    let host = controller_host(controller);
    remotes()
        .into_iter()
        .find(|(_, url)| url.contains(&host))
        .and_then(|(name, url)| app_of(&url).map(|app| (name, app)))
}

fn from_remotes(controller: &str) -> Option<String> {
    remote_for(controller).map(|(_, app)| app)
}

/// The controller's host without scheme or port.
pub(crate) fn controller_host(controller: &str) -> String {
    let rest = controller.split("://").nth(1).unwrap_or(controller);
    let host_port = rest.split('/').next().unwrap_or(rest);
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => host_port.to_owned(),
    }
}

/// `ssh://git@<host>:2222/<app>.git`, the remote the builder answers on.
pub(crate) fn remote_url(controller: &str, app: &str) -> String {
    format!("ssh://git@{}:2222/{app}.git", controller_host(controller))
}

fn remotes() -> Vec<(String, String)> {
    let Ok(output) = Command::new("git").args(["remote", "-v"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

fn app_of(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    let app = last.strip_suffix(".git").unwrap_or(last);
    (!app.is_empty()).then(|| app.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_remotes() {
        assert_eq!(
            controller_host("http://deis.example.com:8000"),
            "deis.example.com"
        );
        assert_eq!(
            controller_host("https://deis.example.com/"),
            "deis.example.com"
        );
        assert_eq!(
            remote_url("http://deis.example.com", "go"),
            "ssh://git@deis.example.com:2222/go.git"
        );
        assert_eq!(
            app_of("ssh://git@deis.example.com:2222/go.git").as_deref(),
            Some("go")
        );
    }
}
