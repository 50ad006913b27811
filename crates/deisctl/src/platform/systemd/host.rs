//! Commands on the host: through the SSH tunnel, or on this host with `sh -c` when there is
//! none.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::Error;
use crate::tunnel::Tunnel;

/// The host systemd runs the platform on.
pub(super) enum Host {
    /// The one deisctl runs on.
    Local,
    Ssh(Tunnel),
}

/// What a command did.
pub(super) struct Ran {
    pub(super) status: i32,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Ran {
    pub(super) fn success(&self) -> bool {
        self.status == 0
    }

    /// The last line it wrote to stderr (else stdout), for a one-line error.
    pub(super) fn last_words(&self) -> String {
        let last = |text: &str| {
            text.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(str::to_owned)
        };
        last(&self.stderr)
            .or_else(|| last(&self.stdout))
            .unwrap_or_else(|| format!("exit status {}", self.status))
    }
}

/// `text` as one word of a POSIX shell.
pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Host {
    /// How messages name it.
    pub(super) fn name(&self) -> String {
        match self {
            Host::Local => "this host".to_owned(),
            Host::Ssh(tunnel) => tunnel.spec().host.clone(),
        }
    }

    /// Runs `command` with the shell, with no input.
    pub(super) async fn run(&self, command: &str) -> Result<Ran, Error> {
        self.run_with_input(command, &[]).await
    }

    /// Runs `command` with the shell, `input` on its standard input.
    pub(super) async fn run_with_input(&self, command: &str, input: &[u8]) -> Result<Ran, Error> {
        match self {
            Host::Ssh(tunnel) => {
                let out = tunnel.exec_with_stdin(command, input).await?;
                Ok(Ran {
                    status: out.status,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            Host::Local => run_here(command, input).await,
        }
    }

    /// Runs `command`; its output, or an error that says `what` failed and why.
    pub(super) async fn ok(&self, command: &str, what: &str) -> Result<String, Error> {
        let ran = self.run(command).await?;
        if ran.success() {
            return Ok(ran.stdout);
        }
        Err(Error::Message(format!(
            "{what} on {} failed: {}",
            self.name(),
            ran.last_words()
        )))
    }
}

async fn run_here(command: &str, input: &[u8]) -> Result<Ran, Error> {
    let failed = |e: std::io::Error| Error::Message(format!("cannot run `{command}`: {e}"));
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes it early: its status says the rest.
        let _ = stdin.write_all(input).await;
    }
    let out = child.wait_with_output().await.map_err(failed)?;
    Ok(Ran {
        status: out.status.code().unwrap_or(128),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_survive_the_shell() {
        assert_eq!(quote("deis-router@1.service"), "'deis-router@1.service'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[tokio::test]
    async fn commands_run_here_without_a_tunnel() {
        let ran = Host::Local
            .run_with_input("cat; echo oops >&2; exit 3", b"input")
            .await
            .expect("sh runs");
        assert_eq!(ran.status, 3);
        assert_eq!(ran.stdout, "input");
        assert_eq!(ran.last_words(), "oops");
    }
}
