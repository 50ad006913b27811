//! The SSH server (russh): public-key authentication, one `session` channel per command, and
//! only `git-receive-pack`/`git-upload-pack` (and `ping`) as commands. The key is checked with the
//! controller when a command arrives, so an unknown key gets a sentence telling what to do rather
//! than a bare "Permission denied".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{Auth, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::command::{self, Command};
use crate::push::{self, Shared, Who};

/// Accepts SSH connections until `shutdown`; sessions in progress, and every other task of
/// pushes (`shared`'s tracker), may finish within `drain`.
pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    let sessions = shared.tasks().clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting an SSH connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = Connection {
            shared: shared.clone(),
            peer,
            key: None,
            channels: HashMap::new(),
            tasks: sessions.clone(),
        };
        let config = config.clone();
        sessions.spawn(async move {
            match russh::server::run_stream(config, stream, handler).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!(peer = %peer, error = %e, "SSH session ended with an error");
                    }
                }
                Err(e) => tracing::debug!(peer = %peer, error = %e, "SSH handshake failed"),
            }
        });
    }
    sessions.close();
    if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
        tracing::warn!("Pushes still running after the drain period; stopping them");
    }
    Ok(())
}

/// One client connection.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    key: Option<PublicKey>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    tasks: TaskTracker,
}

impl Connection {
    /// Refuses what a channel asked with one line on stderr and exit status 1.
    fn refuse(&mut self, id: ChannelId, message: String) {
        if let Some(channel) = self.channels.remove(&id) {
            self.tasks.spawn(push::refuse(channel, message));
        }
    }
}

impl Handler for Connection {
    type Error = anyhow::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // Ownership is proven; whose key it is the controller says when a command arrives.
        self.key = Some(key.public_key.clone());
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn env_request(
        &mut self,
        _channel: ChannelId,
        _name: &str,
        _value: &str,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.refuse(
            channel,
            "This server has no shell: deploy with `git push deis master`, run commands with `deis run`."
                .to_owned(),
        );
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.refuse(
            channel,
            format!("The {name} subsystem is not available here."),
        );
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(id)?;
        let raw = String::from_utf8_lossy(data).into_owned();
        let command = match command::parse(&raw) {
            Ok(c) => c,
            Err(refused) => {
                self.refuse(id, refused.to_string());
                return Ok(());
            }
        };
        let Some(channel) = self.channels.remove(&id) else {
            return Ok(());
        };
        let Some(key) = self.key.clone() else {
            self.tasks
                .spawn(push::refuse(channel, "No public key was offered."));
            return Ok(());
        };
        let shared = self.shared.clone();
        let peer = self.peer;
        let local = shared.local;
        self.tasks.spawn(async move {
            if command == Command::Ping {
                return push::pong(channel).await;
            }
            let who = match push::identify(&shared, &key).await {
                Ok((username, fingerprint)) => Who {
                    username,
                    fingerprint,
                    connection: format!(
                        "{} {} {} {}",
                        peer.ip(),
                        peer.port(),
                        local.ip(),
                        local.port()
                    ),
                    command: raw,
                },
                Err(message) => return push::refuse(channel, message).await,
            };
            match command {
                Command::ReceivePack(app) => push::receive_pack(shared, channel, who, app).await,
                Command::UploadPack(app) => push::upload_pack(shared, channel, who, app).await,
                Command::Ping => {}
            }
        });
        Ok(())
    }
}
