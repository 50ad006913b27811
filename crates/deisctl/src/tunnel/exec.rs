//! Running a command on the far host (`ssh host command`).

use russh::{ChannelMsg, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::Tunnel;
use crate::Error;

/// How much of each output stream [`Tunnel::exec`] keeps; the rest is read and dropped.
pub(crate) const OUTPUT_LIMIT: usize = 16 << 20;

/// What a remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecOutput {
    /// Its exit status; 128 + the signal's number when a signal killed it, as a shell says.
    pub(crate) status: i32,
    /// The signal that killed it (`TERM`, `KILL`, ...).
    pub(crate) signal: Option<String>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Whether either stream was longer than [`OUTPUT_LIMIT`] and was cut (with a note).
    pub(crate) truncated: bool,
}

impl ExecOutput {
    pub(crate) fn success(&self) -> bool {
        self.status == 0
    }
}

/// One output stream, kept up to [`OUTPUT_LIMIT`].
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        let room = OUTPUT_LIMIT - self.kept.len();
        let take = room.min(data.len());
        self.kept.extend_from_slice(&data[..take]);
        self.dropped += (data.len() - take) as u64;
    }

    fn finish(mut self) -> (Vec<u8>, bool) {
        if self.dropped > 0 {
            self.kept.extend_from_slice(
                format!(
                    "\n[deisctl: {} more bytes cut after {} MiB]\n",
                    self.dropped,
                    OUTPUT_LIMIT >> 20
                )
                .as_bytes(),
            );
        }
        (self.kept, self.dropped > 0)
    }
}

impl Tunnel {
    /// Runs `command` through the far user's shell with no input; its output and status.
    pub(crate) async fn exec(&self, command: &str) -> Result<ExecOutput, Error> {
        self.exec_with_stdin(command, tokio::io::empty()).await
    }

    /// Runs `command` through the far user's shell with `stdin` streamed to it (its end closes
    /// the command's input); its output and status. Not bounded in time.
    pub(crate) async fn exec_with_stdin<R>(
        &self,
        command: &str,
        mut stdin: R,
    ) -> Result<ExecOutput, Error>
    where
        R: AsyncRead + Unpin,
    {
        let what = format!("running `{command}` on {}", self.spec().host);
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.failure(&what, &e))?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.failure(&what, &e))?;
        let (mut from_far, to_far) = channel.split();
        let result = {
            let feed = async {
                let mut writer = to_far.make_writer();
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = stdin.read(&mut buf).await.map_err(|e| {
                        Error::Message(format!("ssh: {what}: reading its input: {e}"))
                    })?;
                    if n == 0 {
                        break;
                    }
                    if writer.write_all(&buf[..n]).await.is_err() {
                        // The command's side is closed; its exit says why.
                        return Ok(());
                    }
                }
                if writer.flush().await.is_ok() {
                    let _ = to_far.eof().await;
                }
                Ok(())
            };
            let collect = async {
                let (mut stdout, mut stderr) = (Capture::default(), Capture::default());
                let (mut status, mut signal) = (None, None);
                loop {
                    match from_far.wait().await {
                        Some(ChannelMsg::Data { data }) => stdout.push(&data),
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.push(&data),
                        Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                        Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                            signal = Some(signal_name);
                        }
                        Some(ChannelMsg::Failure) => {
                            return Err(Error::Message(format!(
                                "ssh: {what}: the host refused to run it"
                            )));
                        }
                        Some(ChannelMsg::Close) => break,
                        Some(_) => {}
                        None => {
                            return Err(Error::Message(format!(
                                "ssh: {what}: {}",
                                self.lost()
                                    .unwrap_or_else(|| "the channel was lost".to_owned())
                            )));
                        }
                    }
                }
                let status = match (status, &signal) {
                    (Some(code), _) => i32::try_from(code).unwrap_or(i32::MAX),
                    (None, Some(sig)) => 128 + signal_number(sig),
                    (None, None) => {
                        return Err(Error::Message(format!(
                            "ssh: {what}: it ended without an exit status"
                        )));
                    }
                };
                let (stdout, cut_out) = stdout.finish();
                let (stderr, cut_err) = stderr.finish();
                Ok(ExecOutput {
                    status,
                    signal: signal.as_ref().map(signal_name),
                    stdout,
                    stderr,
                    truncated: cut_out || cut_err,
                })
            };
            tokio::pin!(feed, collect);
            let mut fed = false;
            loop {
                tokio::select! {
                    r = &mut collect => break r,
                    r = &mut feed, if !fed => match r {
                        Ok(()) => fed = true,
                        Err(e) => break Err(e),
                    },
                }
            }
        };
        let _ = to_far.close().await;
        result
    }
}

fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Linux's number for `sig`.
fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    }
}
