//! A `git push` (and fetch) as the builder serves it: the user is identified and authorised by
//! the controller, pushes to one app wait for each other, the real `git-receive-pack` receives
//! the pack, and its pre-receive hook hands the pushed refs over two FIFOs to [`Builds`], whose
//! progress goes back to the client as it happens. The push succeeds only if the new release
//! was deployed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};

use deis_proto::controller::v1 as pb;
use russh::keys::PublicKey;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::build::{Builds, Job};
use crate::controller::ControllerError;
use crate::output::Output;
use crate::repo::{self, Repo};

/// What every session shares.
pub(crate) struct Shared {
    pub(crate) builds: Builds,
    /// The SSH listener's address (for `SSH_CONNECTION`).
    pub(crate) local: SocketAddr,
    locks: SyncMutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    pub(crate) fn new(builds: Builds, local: SocketAddr) -> Self {
        Shared {
            builds,
            local,
            locks: SyncMutex::default(),
        }
    }

    fn lock_for(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(app.to_owned()).or_default().clone()
    }

    fn repos(&self) -> PathBuf {
        self.builds.config.data_dir.join("repos")
    }
}

/// The person at the other end.
pub(crate) struct Who {
    pub(crate) username: String,
    pub(crate) fingerprint: String,
    /// `SSH_CONNECTION`: client ip, port, server ip, port.
    pub(crate) connection: String,
    /// The command as the client sent it.
    pub(crate) command: String,
}

/// The user owning `key`, or the sentence to show.
pub(crate) async fn identify(shared: &Shared, key: &PublicKey) -> Result<(String, String), String> {
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("The offered key cannot be read: {e}"))?;
    match shared.builds.controller.lookup_key(&openssh).await {
        Ok(found) => Ok(found),
        Err(ControllerError::Refused(_)) => Err(format!(
            "This SSH key ({}) belongs to no user: add it with `deis keys:add`.",
            key.fingerprint(russh::keys::HashAlg::Sha256)
        )),
        Err(e) => Err(format!("The builder cannot check your key: {e}")),
    }
}

/// One line on stderr and exit status 1.
pub(crate) async fn refuse(channel: Channel<Msg>, message: String) {
    let line = format!("{message}\n");
    let _ = channel.extended_data_bytes(1, line.into_bytes()).await;
    finish(&channel, 1).await;
}

/// `ping` -> `pong`.
pub(crate) async fn pong(channel: Channel<Msg>) {
    let _ = channel.data_bytes(&b"pong\n"[..]).await;
    finish(&channel, 0).await;
}

async fn finish(channel: &Channel<Msg>, status: u32) {
    let _ = channel.exit_status(status).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// `git fetch`/`clone` of an app the user may deploy.
pub(crate) async fn upload_pack(
    shared: Arc<Shared>,
    mut channel: Channel<Msg>,
    who: Who,
    app: String,
) {
    if let Err(e) = shared
        .builds
        .controller
        .app_config(&who.username, &app)
        .await
    {
        return refuse(channel, format!("{app}: {e}")).await;
    }
    let repo = match Repo::open(&shared.repos(), &app).await {
        Ok(r) => r,
        Err(e) => return refuse(channel, e.to_string()).await,
    };
    let mut command = Command::new("git-upload-pack");
    command.arg(&repo.path);
    let status = match spawn(command) {
        Ok(child) => pump(child, &mut channel, u64::MAX).await,
        Err(e) => return refuse(channel, e).await,
    };
    finish(&channel, status.unwrap_or(1)).await;
}

/// `git push`: receive, build, release.
pub(crate) async fn receive_pack(
    shared: Arc<Shared>,
    mut channel: Channel<Msg>,
    who: Who,
    app: String,
) {
    let authorised = shared
        .builds
        .controller
        .authorize_push(pb::AuthorizePushRequest {
            username: who.username.clone(),
            app: app.clone(),
            fingerprint: who.fingerprint.clone(),
            ssh_connection: who.connection.clone(),
            ssh_original_command: who.command.clone(),
        })
        .await;
    if let Err(e) = authorised {
        return refuse(channel, format!("{app}: push denied: {e}")).await;
    }
    let lock = shared.lock_for(&app);
    let _held = match lock.clone().try_lock_owned() {
        Ok(held) => held,
        Err(_) => {
            let note = format!("-----> Another push to {app} is being built; waiting for it\n");
            let _ = channel.extended_data_bytes(1, note.into_bytes()).await;
            lock.lock_owned().await
        }
    };
    let repo = match Repo::open(&shared.repos(), &app).await {
        Ok(r) => r,
        Err(e) => return refuse(channel, e.to_string()).await,
    };
    let dir = shared
        .builds
        .config
        .data_dir
        .join("pushes")
        .join(uuid::Uuid::new_v4().to_string());
    let status = match push_with_hook(&shared, &mut channel, &who, &app, &repo, &dir).await {
        Ok(status) => status,
        Err(message) => {
            let _ = channel
                .extended_data_bytes(1, format!("{message}\n").into_bytes())
                .await;
            1
        }
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    finish(&channel, status).await;
}

async fn push_with_hook(
    shared: &Arc<Shared>,
    channel: &mut Channel<Msg>,
    who: &Who,
    app: &str,
    repo: &Repo,
    dir: &Path,
) -> Result<u32, String> {
    let refs = dir.join("refs");
    let output = dir.join("output");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot prepare the push: {e}"))?;
    for fifo in [&refs, &output] {
        nix::unistd::mkfifo(
            fifo.as_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| format!("cannot prepare the push: {e}"))?;
    }
    // Opened for reading and writing, the output FIFO never blocks us; the hook sees its end
    // when we drop it.
    let sender = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&output)
        .map_err(|e| format!("cannot prepare the push: {e}"))?;
    let mut command = Command::new("git-receive-pack");
    command.arg(&repo.path).env("DEIS_PUSH_DIR", dir);
    let child = spawn(command)?;
    let hook = {
        let (shared, username, app, repo, dir) = (
            shared.clone(),
            who.username.clone(),
            app.to_owned(),
            repo.clone(),
            dir.to_owned(),
        );
        tokio::spawn(async move {
            let input = read_fifo(dir.join("refs")).await;
            build_from_hook(&shared, &username, &app, &repo, &dir, &input, sender).await;
        })
    };
    let status = pump(child, channel, shared.builds.config.max_push_bytes).await;
    if !hook.is_finished() {
        // The hook never ran (nothing to update, or the pack was refused): release the reader.
        release_fifo(&refs);
    }
    let _ = hook.await;
    status
}

/// Reads a FIFO to its end once a writer has opened it (blocking, so on the blocking pool).
async fn read_fifo(path: PathBuf) -> String {
    tokio::task::spawn_blocking(move || std::fs::read_to_string(path).unwrap_or_default())
        .await
        .unwrap_or_default()
}

/// Unblocks a reader waiting for a FIFO's writer, which then sees an empty input.
fn release_fifo(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path);
}

/// Runs the build for the refs the hook handed over, writing progress to the hook's output
/// and the verdict (the hook's exit status) to `status`.
async fn build_from_hook(
    shared: &Shared,
    username: &str,
    app: &str,
    repo: &Repo,
    dir: &Path,
    input: &str,
    sender: tokio::net::unix::pipe::Sender,
) {
    if input.is_empty() {
        return;
    }
    let (quarantine, refs) = repo::parse_hook_input(input);
    let mut out = Output::new(sender);
    let verdict = match repo::ref_to_build(&refs) {
        None => Ok(()),
        Some(update) => {
            let job = Job {
                username,
                app,
                repo,
                quarantine: &quarantine,
                sha: &update.new,
            };
            let timeout = shared.builds.config.build_timeout;
            match tokio::time::timeout(timeout, shared.builds.run(job, &mut out)).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the build took longer than {} s and was stopped",
                    timeout.as_secs()
                )),
            }
        }
    };
    let status = match verdict {
        Ok(()) => "0",
        Err(reason) => {
            out.failure(&format!("Push rejected: {reason}")).await;
            "1"
        }
    };
    let _ = tokio::fs::write(dir.join("status"), status).await;
    out.close().await;
}

fn spawn(mut command: Command) -> Result<Child, String> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "git is not installed on the builder (apt-get install -y git)".to_owned()
        } else {
            format!("git cannot start: {e}")
        }
    })
}

/// Connects a git process to the channel: client data to its stdin (at most `max_bytes`),
/// its stdout and stderr back. Its exit status, or why it was stopped.
async fn pump(mut child: Child, channel: &mut Channel<Msg>, max_bytes: u64) -> Result<u32, String> {
    let (mut stdin, mut stdout, mut stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => return Err("git's pipes are missing".to_owned()),
        };
    let mut out = channel.make_writer();
    let mut err = channel.make_writer_ext(Some(1));
    let copy_out = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stdout, &mut out).await;
        let _ = out.flush().await;
    });
    let copy_err = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stderr, &mut err).await;
        let _ = err.flush().await;
    });
    let feed = async move {
        let mut received: u64 = 0;
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => {
                    received += data.len() as u64;
                    if received > max_bytes {
                        return Err(format!(
                            "the push is larger than the limit of {max_bytes} bytes"
                        ));
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
        status = child.wait() => status.map_err(|e| e.to_string()),
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
