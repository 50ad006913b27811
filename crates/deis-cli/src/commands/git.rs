//! git:remote: the app's git remote (`deis` unless named), which `apps:create` adds too.

use super::Session;
use crate::appname;
use crate::error::CliError;

pub(crate) fn remote(s: &Session, app: &str, remote: &str) -> Result<i32, CliError> {
    add_remote(s, app, remote)?;
    Ok(0)
}

/// `git remote add <remote> <url>`, with the Deis client's hint when it exists.
pub(crate) fn add_remote(s: &Session, app: &str, remote: &str) -> Result<(), CliError> {
    let url = appname::remote_url(&s.settings.controller, app);
    let output = std::process::Command::new("git")
        .args(["remote", "add", remote, &url])
        .output();
    match output {
        Ok(o) if o.status.success() => {
            println!("Git remote {remote} added");
            Ok(())
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("already exists") => {
            Err(CliError::Message(format!(
                "A git remote named {remote} already exists. To replace it: git remote rename {remote} {remote}.old && deis git:remote -a {app}"
            )))
        }
        Ok(o) => Err(CliError::Message(format!(
            "git remote add failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(CliError::Message(format!("git cannot run: {e}"))),
    }
}
