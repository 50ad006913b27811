//! A git process (`git-receive-pack`, `git-upload-pack`) joined to an SSH channel: the client's
//! data to its stdin, its stdout and stderr back, as they come.

use std::process::Stdio;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Why git did not run to its end; the text is shown to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PipeError {
    #[error("git is not installed on the builder (apt-get install -y git)")]
    NotInstalled(#[source] std::io::Error),
    #[error("git cannot start: {0}")]
    Start(#[source] std::io::Error),
    #[error("git's pipes are missing")]
    NoPipes,
    /// The client sent more than the builder takes; git was stopped.
    #[error("the push is larger than the limit of {max_bytes} bytes")]
    TooLarge { max_bytes: u64 },
    /// Waiting for git failed.
    #[error("{0}")]
    Wait(#[source] std::io::Error),
}

/// Starts `command` with its standard streams piped (killed if dropped).
pub(crate) fn spawn(mut command: Command) -> Result<Child, PipeError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PipeError::NotInstalled(e)
        } else {
            PipeError::Start(e)
        }
    })
}

/// Connects a git process to the channel: client data to its stdin (at most `max_bytes`),
/// its stdout and stderr back by tasks of `tasks`. Its exit status, or why it was stopped.
pub(crate) async fn pump(
    mut child: Child,
    channel: &mut Channel<Msg>,
    max_bytes: u64,
    tasks: &TaskTracker,
) -> Result<u32, PipeError> {
    let (mut stdin, mut stdout, mut stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => return Err(PipeError::NoPipes),
        };
    let mut out = channel.make_writer();
    let mut err = channel.make_writer_ext(Some(1));
    let copy_out = tasks.spawn(
        async move {
            let _ = tokio::io::copy(&mut stdout, &mut out).await;
            let _ = out.flush().await;
        }
        .in_current_span(),
    );
    let copy_err = tasks.spawn(
        async move {
            let _ = tokio::io::copy(&mut stderr, &mut err).await;
            let _ = err.flush().await;
        }
        .in_current_span(),
    );
    let feed = async move {
        let mut received: u64 = 0;
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => {
                    received += data.len() as u64;
                    if received > max_bytes {
                        return Err(PipeError::TooLarge { max_bytes });
                    }
                    if stdin.write_all(&data).await.is_err() {
                        break;
                    }
                }
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
        drop(stdin);
        // Keep the channel's reader alive until git is done.
        std::future::pending::<()>().await;
        Ok(())
    };
    let status = tokio::select! {
        status = child.wait() => status.map_err(PipeError::Wait),
        Err(reason) = feed => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(reason)
        }
    };
    let _ = copy_out.await;
    let _ = copy_err.await;
    let code = status?;
    Ok(code.code().and_then(|c| u32::try_from(c).ok()).unwrap_or(1))
}
