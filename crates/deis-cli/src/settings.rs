//! The settings file `~/.deis/<profile>.json` (profile `$DEIS_PROFILE`, default `client`), in the
//! Deis v1 client's format, so both clients can share a login.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// What `deis login` remembers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Settings {
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) ssl_verify: bool,
    #[serde(default)]
    pub(crate) controller: String,
    #[serde(default)]
    pub(crate) token: String,
    #[serde(default)]
    pub(crate) response_limit: i64,
}

/// Where the settings file is.
pub(crate) fn path() -> PathBuf {
    let profile = std::env::var("DEIS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "client".to_owned());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".deis").join(format!("{profile}.json"))
}

impl Settings {
    /// The saved settings, if any.
    pub(crate) fn load() -> Option<Settings> {
        let text = std::fs::read_to_string(path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The saved settings, or the error every command but login and register gives.
    pub(crate) fn require() -> Result<Settings, CliError> {
        Settings::load()
            .filter(|s| !s.token.is_empty() && !s.controller.is_empty())
            .ok_or_else(|| {
                CliError::Message(
                    "Not logged in. Use 'deis login' or 'deis register' to get started.".into(),
                )
            })
    }

    /// Page size for list requests (`response_limit`, 100 when unset).
    pub(crate) fn limit(&self) -> i64 {
        if self.response_limit > 0 {
            self.response_limit
        } else {
            100
        }
    }

    /// Writes the file (directory 0700, file 0600).
    pub(crate) fn save(&self) -> Result<(), CliError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = path();
        let fail =
            |e: std::io::Error| CliError::Message(format!("cannot save {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
        let text = serde_json::to_string(self).map_err(|e| CliError::Message(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(fail)
    }

    /// Deletes the file.
    pub(crate) fn delete() {
        let _ = std::fs::remove_file(path());
    }
}
