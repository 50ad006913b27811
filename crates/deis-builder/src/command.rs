//! What an SSH client asked to run, as the builder understands it.

/// A parsed `exec` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `git push`: `git-receive-pack '<app>.git'`.
    ReceivePack(String),
    /// `git fetch`/`clone`: `git-upload-pack '<app>.git'`.
    UploadPack(String),
    /// `ping` answers `pong` (Deis's health check over SSH).
    Ping,
}

/// Why a command was refused; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("`{0}` is not available here: this server only accepts `git push` (and fetch)")]
    Unknown(String),
    #[error("no app given: push to `ssh://git@<builder>:2222/<app>.git`")]
    NoRepo,
    #[error("`{0}` is not an app name")]
    BadRepo(String),
}

/// Parses an `exec` request the way git sends it (`git-receive-pack '/app.git'`).
pub(crate) fn parse(raw: &str) -> Result<Command, Refused> {
    let raw = raw.trim();
    if raw == "ping" {
        return Ok(Command::Ping);
    }
    let (verb, rest) = raw.split_once(' ').unwrap_or((raw, ""));
    let make = match verb {
        "git-receive-pack" | "git receive-pack" => Command::ReceivePack,
        "git-upload-pack" | "git upload-pack" => Command::UploadPack,
        _ => return Err(Refused::Unknown(raw.chars().take(80).collect())),
    };
    let repo = rest.trim().trim_matches(|c| c == '\'' || c == '"');
    let repo = repo.trim_start_matches('/').trim_end_matches('/');
    let app = repo.strip_suffix(".git").unwrap_or(repo);
    if app.is_empty() {
        return Err(Refused::NoRepo);
    }
    let valid = app.len() <= 63
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !app.starts_with('-');
    if !valid {
        return Err(Refused::BadRepo(app.chars().take(80).collect()));
    }
    Ok(make(app.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_commands_name_their_app() {
        assert_eq!(
            parse("git-receive-pack '/go.git'"),
            Ok(Command::ReceivePack("go".into()))
        );
        assert_eq!(
            parse("git-receive-pack 'go.git'"),
            Ok(Command::ReceivePack("go".into()))
        );
        assert_eq!(
            parse("git-upload-pack '/go-2'"),
            Ok(Command::UploadPack("go-2".into()))
        );
        assert_eq!(parse("ping"), Ok(Command::Ping));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        assert!(matches!(parse("bash"), Err(Refused::Unknown(_))));
        assert!(matches!(parse("rm -rf /"), Err(Refused::Unknown(_))));
        assert_eq!(parse("git-receive-pack ''"), Err(Refused::NoRepo));
        assert!(matches!(
            parse("git-receive-pack '../etc.git'"),
            Err(Refused::BadRepo(_))
        ));
        assert!(matches!(
            parse("git-receive-pack 'a$(id).git'"),
            Err(Refused::BadRepo(_))
        ));
    }
}
