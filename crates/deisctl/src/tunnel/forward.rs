//! Local listeners whose connections the tunnel carries to a unix socket or a TCP port on the
//! far side (OpenSSH's `-L`).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Tunnel;
use crate::Error;

/// Where a forward listens on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalEndpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A forward: connections to its local end reach the far end through the tunnel. Dropping it
/// stops it, and ends the connections it carries.
pub(crate) struct Forward {
    local: LocalEndpoint,
    errors: Errors,
    /// Dropped with the forward: its accept loop and connections then stop, closing their
    /// channels.
    _stop: watch::Sender<()>,
    /// The private directory of a unix socket, removed with the forward.
    _dir: Option<TempDir>,
}

/// Why the forward's connections failed, latest last (bounded).
type Errors = Arc<Mutex<Vec<String>>>;

const KEPT_ERRORS: usize = 16;

fn record(errors: &Errors, error: String) {
    if let Ok(mut errors) = errors.lock() {
        if errors.len() == KEPT_ERRORS {
            errors.remove(0);
        }
        errors.push(error);
    }
}

impl Forward {
    /// Where it listens.
    pub(crate) fn endpoint(&self) -> &LocalEndpoint {
        &self.local
    }

    /// The local address of a [`Tunnel::forward_tcp`] (`127.0.0.1:<port>`); that of a unix
    /// forward is `127.0.0.1:0`, which nothing answers.
    pub(crate) fn addr(&self) -> SocketAddr {
        match &self.local {
            LocalEndpoint::Tcp(addr) => *addr,
            LocalEndpoint::Unix(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// The local socket of a [`Tunnel::forward_unix`]; that of a TCP forward is empty.
    pub(crate) fn path(&self) -> &Path {
        match &self.local {
            LocalEndpoint::Unix(path) => path,
            LocalEndpoint::Tcp(_) => Path::new(""),
        }
    }

    /// Why the latest of its connections failed (the far end refused it, or the SSH
    /// connection was lost), if one did: what a client that saw its connection close early
    /// can tell the operator.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.errors.lock().ok().and_then(|e| e.last().cloned())
    }
}

/// Where a forward's connections go.
#[derive(Clone)]
enum Target {
    Unix(String),
    Tcp(String, u16),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Unix(path) => path.clone(),
            Target::Tcp(host, port) if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp(host, port) => format!("{host}:{port}"),
        }
    }
}

impl Tunnel {
    /// A local unix socket, in a private temporary directory (mode 0700), whose connections
    /// reach the unix socket `remote_path` on the far host (a `direct-streamlocal` channel
    /// each): the remote Docker socket, for one.
    pub(crate) async fn forward_unix(&self, remote_path: &str) -> Result<Forward, Error> {
        self.check_open(&format!("cannot forward to {remote_path}"))?;
        let io_error = |what: &str, e: std::io::Error| {
            Error::Message(format!(
                "ssh: cannot make a local socket for {remote_path}: {what}: {e}"
            ))
        };
        let dir = tempfile::Builder::new()
            .prefix("deisctl-tunnel-")
            .tempdir()
            .map_err(|e| io_error("a temporary directory", e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(&dir.path().display().to_string(), e))?;
        let path = dir.path().join("forward.sock");
        let listener =
            UnixListener::bind(&path).map_err(|e| io_error(&path.display().to_string(), e))?;
        let errors = Errors::default();
        let (stop, stopped) = watch::channel(());
        let accept = Accept::Unix(listener);
        let target = Target::Unix(remote_path.to_owned());
        tokio::spawn(serve(accept, self.clone(), target, errors.clone(), stopped));
        Ok(Forward {
            local: LocalEndpoint::Unix(path),
            errors,
            _stop: stop,
            _dir: Some(dir),
        })
    }

    /// A listener on `127.0.0.1:<free port>` whose connections reach `remote_host:remote_port`
    /// as the far host resolves and reaches it (a `direct-tcpip` channel each): etcd on
    /// `127.0.0.1:2379` there, for one.
    pub(crate) async fn forward_tcp(
        &self,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<Forward, Error> {
        let target = Target::Tcp(remote_host.to_owned(), remote_port);
        self.check_open(&format!("cannot forward to {}", target.describe()))?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await;
        let (listener, addr) = match listener.and_then(|l| l.local_addr().map(|a| (l, a))) {
            Ok(bound) => bound,
            Err(e) => {
                return Err(Error::Message(format!(
                    "ssh: cannot listen on 127.0.0.1 for {}: {e}",
                    target.describe()
                )));
            }
        };
        let errors = Errors::default();
        let (stop, stopped) = watch::channel(());
        let accept = Accept::Tcp(listener);
        tokio::spawn(serve(accept, self.clone(), target, errors.clone(), stopped));
        Ok(Forward {
            local: LocalEndpoint::Tcp(addr),
            errors,
            _stop: stop,
            _dir: None,
        })
    }

    /// A channel to `target` for a connection from `peer`.
    async fn open(
        &self,
        target: &Target,
        peer: Option<SocketAddr>,
    ) -> Result<Channel<Msg>, String> {
        let handle = &self.inner.handle;
        let opened = match target {
            Target::Unix(path) => handle.channel_open_direct_streamlocal(path.as_str()).await,
            Target::Tcp(host, port) => {
                let (ip, port_from) = peer
                    .map(|p| (p.ip().to_string(), u32::from(p.port())))
                    .unwrap_or_else(|| ("127.0.0.1".to_owned(), 0));
                handle
                    .channel_open_direct_tcpip(host.as_str(), u32::from(*port), ip, port_from)
                    .await
            }
        };
        opened.map_err(|e| {
            self.failure(&format!("cannot open {}", target.describe()), &e)
                .to_string()
        })
    }
}

/// Accept errors that a moment's wait may cure (too many open files); the loop goes on.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// A forward's listener.
enum Accept {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A local connection, with its peer's address if it has one.
enum Accepted {
    Unix(UnixStream),
    Tcp(TcpStream, SocketAddr),
}

impl Accept {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Accept::Unix(listener) => listener.accept().await.map(|(s, _)| Accepted::Unix(s)),
            Accept::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Tcp(stream, peer))
            }
        }
    }
}

/// Accepts connections and carries each until `stopped` says the forward was dropped; then
/// ends them (closing their channels) and returns.
async fn serve(
    listener: Accept,
    tunnel: Tunnel,
    target: Target,
    errors: Errors,
    mut stopped: watch::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    let (tunnel, target) = (tunnel.clone(), target.clone());
                    let (errors, stopped) = (errors.clone(), stopped.clone());
                    connections.spawn(carry(accepted, tunnel, target, errors, stopped));
                }
                Err(e) => {
                    record(&errors, format!("ssh: accepting a local connection: {e}"));
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Carries one local connection.
async fn carry(
    accepted: Accepted,
    tunnel: Tunnel,
    target: Target,
    errors: Errors,
    stopped: watch::Receiver<()>,
) {
    let result = match accepted {
        Accepted::Unix(mut stream) => match tunnel.open(&target, None).await {
            // A unix socket cannot be reset: the client sees an early end.
            Ok(channel) => pump(&mut stream, channel, &tunnel, stopped).await,
            Err(e) => Err(e),
        },
        Accepted::Tcp(mut stream, peer) => {
            let result = match tunnel.open(&target, Some(peer)).await {
                Ok(channel) => pump(&mut stream, channel, &tunnel, stopped).await,
                Err(e) => Err(e),
            };
            if result.is_err() {
                // A reset, not an orderly close, so that the client sees the failure as one.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
            result
        }
    };
    if let Err(e) = result {
        record(&errors, e);
    }
}

/// Copies between `local` and `channel` both ways: an end of input either side is passed on
/// as such (half-close), and the copy ends when the far side closes the channel or the local
/// side goes away or the forward is dropped, or with an error when the SSH connection is lost.
pub(super) async fn pump<S>(
    local: &mut S,
    channel: Channel<Msg>,
    tunnel: &Tunnel,
    mut stopped: watch::Receiver<()>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// How the local-to-far copy ended.
    enum Upstream {
        /// All sent and the end of input passed on, or the channel stopped taking data (the
        /// far side's close, or the connection's loss, then ends the copy).
        Sent,
        /// The local side failed: nobody is left to serve.
        LocalGone,
    }
    let (mut from_far, to_far) = channel.split();
    let (mut local_in, mut local_out) = tokio::io::split(local);
    let result = {
        let upstream = async {
            let mut writer = to_far.make_writer();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match local_in.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => return Upstream::LocalGone,
                };
                if writer.write_all(&buf[..n]).await.is_err() {
                    return Upstream::Sent;
                }
            }
            if writer.flush().await.is_ok() {
                let _ = to_far.eof().await;
            }
            Upstream::Sent
        };
        let downstream = async {
            loop {
                match from_far.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        if local_out.write_all(&data).await.is_err() {
                            return Ok(());
                        }
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = local_out.shutdown().await;
                    }
                    Some(ChannelMsg::Close) => return Ok(()),
                    Some(_) => {}
                    None => {
                        return Err(format!(
                            "ssh: {}",
                            tunnel.lost().unwrap_or_else(|| format!(
                                "the SSH connection to {} ended",
                                tunnel.spec().address()
                            ))
                        ));
                    }
                }
            }
        };
        tokio::pin!(upstream, downstream);
        let mut sent_all = false;
        loop {
            tokio::select! {
                _ = stopped.changed() => break Ok(()),
                r = &mut downstream => break r,
                r = &mut upstream, if !sent_all => match r {
                    Upstream::Sent => sent_all = true,
                    Upstream::LocalGone => break Ok(()),
                },
            }
        }
    };
    let _ = to_far.close().await;
    result
}
