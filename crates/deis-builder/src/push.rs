//! A `git push` (and fetch) as the builder serves it: the user is identified and authorised by
//! the controller, pushes to one app wait for each other, the real `git-receive-pack` receives
//! the pack, and its pre-receive hook hands the pushed refs over two FIFOs to [`Builds`], whose
//! progress goes back to the client as it happens. The push succeeds only if the new release
//! was deployed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};

use deis_proto::controller::v1 as pb;
use russh::Channel;
use russh::keys::PublicKey;
use russh::server::Msg;
use tokio::process::Command;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::build::{Builds, Job};
use crate::controller::ControllerError;
use crate::output::Output;
use crate::pipe::{self, PipeError};
use crate::repo::{self, GitError, Repo};

/// Why the builder cannot tell whose key it is; the text is the sentence shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentifyError {
    #[error("The offered key cannot be read: {0}")]
    Unreadable(#[source] russh::keys::ssh_key::Error),
    #[error("This SSH key ({fingerprint}) belongs to no user: add it with `deis keys:add`.")]
    Unknown {
        fingerprint: String,
        #[source]
        source: ControllerError,
    },
    #[error("The builder cannot check your key: {0}")]
    Controller(#[source] ControllerError),
}

/// Why a push or fetch ends before (or without) a build; the text is shown to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error("{app}: push denied: {source}")]
    Denied {
        app: String,
        #[source]
        source: ControllerError,
    },
    /// The user may not fetch the app.
    #[error("{app}: {source}")]
    NoFetch {
        app: String,
        #[source]
        source: ControllerError,
    },
    #[error(transparent)]
    Repo(#[from] GitError),
    #[error("cannot prepare the push: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the push: {source}")]
    Fifo {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error(transparent)]
    Git(#[from] PipeError),
}

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

    /// The tasks of pushes, drained when the builder stops.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.builds.tasks
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

/// The user owning `key`: `(username, fingerprint)`.
pub(crate) async fn identify(
    shared: &Shared,
    key: &PublicKey,
) -> Result<(String, String), IdentifyError> {
    let openssh = key.to_openssh().map_err(IdentifyError::Unreadable)?;
    match shared.builds.controller.lookup_key(&openssh).await {
        Ok(found) => Ok(found),
        Err(source @ ControllerError::Refused(_)) => Err(IdentifyError::Unknown {
            fingerprint: key.fingerprint(russh::keys::HashAlg::Sha256).to_string(),
            source,
        }),
        Err(e) => {
            tracing::warn!(error = %e, retryable = e.is_retryable(), "Looking up a key failed");
            Err(IdentifyError::Controller(e))
        }
    }
}

/// One line on stderr and exit status 1.
pub(crate) async fn refuse(channel: Channel<Msg>, message: impl std::fmt::Display) {
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
    match fetch(&shared, &mut channel, &who, &app).await {
        Ok(status) => finish(&channel, status).await,
        Err(e) => refuse(channel, e).await,
    }
}

/// Runs `git-upload-pack` if `who` may deploy `app`: its exit status.
async fn fetch(
    shared: &Shared,
    channel: &mut Channel<Msg>,
    who: &Who,
    app: &str,
) -> Result<u32, PushError> {
    if let Err(source) = shared
        .builds
        .controller
        .app_config(&who.username, app)
        .await
    {
        return Err(PushError::NoFetch {
            app: app.to_owned(),
            source,
        });
    }
    let repo = Repo::open(&shared.repos(), app).await?;
    let mut command = Command::new("git-upload-pack");
    command.arg(&repo.path);
    let child = pipe::spawn(command)?;
    let status = pipe::pump(child, channel, u64::MAX, shared.tasks()).await;
    Ok(status.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "git-upload-pack stopped");
        1
    }))
}

/// `git push`: receive, build, release; in a span `push` with the `app` and, once the hook
/// names it, the `sha` being built.
pub(crate) async fn receive_pack(
    shared: Arc<Shared>,
    channel: Channel<Msg>,
    who: Who,
    app: String,
) {
    let span = push_span(&app);
    receive(shared, channel, who, app).instrument(span).await;
}

/// The span of one push: every log line of it carries `app` and, once known, `sha`.
fn push_span(app: &str) -> tracing::Span {
    tracing::info_span!("push", app = %app, sha = tracing::field::Empty)
}

async fn receive(shared: Arc<Shared>, mut channel: Channel<Msg>, who: Who, app: String) {
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
    if let Err(source) = authorised {
        tracing::info!(user = %who.username, error = %source, retryable = source.is_retryable(), "Push denied");
        return refuse(channel, PushError::Denied { app, source }).await;
    }
    tracing::info!(user = %who.username, "Push authorised");
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
        Err(e) => return refuse(channel, e).await,
    };
    let dir = shared
        .builds
        .config
        .data_dir
        .join("pushes")
        .join(uuid::Uuid::new_v4().to_string());
    let status = match push_with_hook(&shared, &mut channel, &who, &app, &repo, &dir).await {
        Ok(status) => status,
        Err(e) => {
            tracing::warn!(error = %e, "Push failed");
            let _ = channel
                .extended_data_bytes(1, format!("{e}\n").into_bytes())
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
) -> Result<u32, PushError> {
    let refs = dir.join("refs");
    let output = dir.join("output");
    let prepare = |path: &Path| {
        let path = path.to_owned();
        |source| PushError::Prepare { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(prepare(dir))?;
    for fifo in [&refs, &output] {
        nix::unistd::mkfifo(
            fifo.as_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|source| PushError::Fifo {
            path: fifo.clone(),
            source,
        })?;
    }
    // Opened for reading and writing, the output FIFO never blocks us; the hook sees its end
    // when we drop it.
    let sender = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&output)
        .map_err(prepare(&output))?;
    let mut command = Command::new("git-receive-pack");
    command.arg(&repo.path).env("DEIS_PUSH_DIR", dir);
    let child = pipe::spawn(command)?;
    let hook = {
        let (shared, username, app, repo, dir) = (
            shared.clone(),
            who.username.clone(),
            app.to_owned(),
            repo.clone(),
            dir.to_owned(),
        );
        async move {
            let input = read_fifo(dir.join("refs")).await;
            build_from_hook(&shared, &username, &app, &repo, &dir, &input, sender).await;
        }
    };
    let hook = shared.tasks().spawn(hook.in_current_span());
    let status = pipe::pump(
        child,
        channel,
        shared.builds.config.max_push_bytes,
        shared.tasks(),
    )
    .await;
    if !hook.is_finished() {
        // The hook never ran (nothing to update, or the pack was refused): release the reader.
        release_fifo(&refs);
    }
    let _ = hook.await;
    Ok(status?)
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
            tracing::Span::current().record("sha", tracing::field::display(&update.new));
            tracing::info!(git.ref = %update.name, "Building the pushed commit");
            let job = Job {
                username,
                app,
                repo,
                quarantine: &quarantine,
                sha: &update.new,
            };
            shared.builds.run(job, &mut out).await
        }
    };
    let status = match verdict {
        Ok(()) => "0",
        Err(reason) => {
            tracing::warn!(error = %reason, "Push rejected");
            out.failure(&format!("Push rejected: {reason}")).await;
            "1"
        }
    };
    let _ = tokio::fs::write(dir.join("status"), status).await;
    out.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_they_always_did() {
        let check = |e: &dyn std::error::Error, expect: &str| assert_eq!(e.to_string(), expect);
        let denied = tonic::Status::permission_denied("the user may not deploy this app");
        check(
            &PushError::Denied {
                app: "shop".to_owned(),
                source: denied.into(),
            },
            "shop: push denied: the user may not deploy this app",
        );
        check(
            &PushError::from(PipeError::TooLarge { max_bytes: 65536 }),
            "the push is larger than the limit of 65536 bytes",
        );
        check(
            &IdentifyError::Unknown {
                fingerprint: "SHA256:abc".to_owned(),
                source: tonic::Status::not_found("no user has this key").into(),
            },
            "This SSH key (SHA256:abc) belongs to no user: add it with `deis keys:add`.",
        );
    }

    #[test]
    fn a_push_is_followed_by_its_app_and_sha() {
        let span = push_span("shop");
        let meta = span.metadata().expect("a push span");
        let fields: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
        assert_eq!((meta.name(), fields), ("push", vec!["app", "sha"]));
    }
}
