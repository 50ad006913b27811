//! Errors as the user reads them: `Error: <message>` on stderr and exit status 1.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A sentence for the user.
    #[error("{0}")]
    Message(String),
    /// The controller answered with an error status: `\n<status line>\n<key>: <message>\n...`.
    #[error("\n{status}\n{body}")]
    Api { status: String, body: String },
    /// The controller could not be reached.
    #[error(
        "the controller at {url} cannot be reached ({reason}); check the URL with `deis whoami` and that the platform is running"
    )]
    Unreachable { url: String, reason: String },
}

impl CliError {
    /// An error response in the Deis client's format.
    pub(crate) fn api(code: u16, reason: &str, body: &str) -> CliError {
        let status = format!("{code} {}", reason.to_ascii_uppercase());
        let rendered = match serde_json::from_str::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(map)) => {
                let mut text = String::new();
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(s) => text.push_str(&format!("{key}: {s}\n")),
                        serde_json::Value::Array(items) => {
                            for item in items {
                                let s = item
                                    .as_str()
                                    .map_or_else(|| item.to_string(), str::to_owned);
                                text.push_str(&format!("{key}: {s}\n"));
                            }
                        }
                        other => text.push_str(&format!("{key}: {other}\n")),
                    }
                }
                text
            }
            _ => format!("{body}\n"),
        };
        CliError::Api {
            status,
            body: rendered,
        }
    }
}
