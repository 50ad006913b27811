//! An SSH tunnel to a cluster host, as Deis v1's `DEISCTL_TUNNEL=[user@]host[:port]` (§17.1):
//! one SSH connection (russh) to the host the operator names, authenticated with the operator's
//! ssh-agent or key files and checked against `~/.ssh/known_hosts`, through which deisctl
//! reaches that host's Docker socket and etcd ([`Tunnel::forward_unix`],
//! [`Tunnel::forward_tcp`]), runs commands there ([`Tunnel::exec`]), and reaches the cluster's
//! other hosts ([`Tunnel::jump`]).
//!
//! Every failure is an [`Error`] of one line that says what to do about it.

// The lead wires the tunnel into the commands; parts of it (exec, close) have no caller yet.
#![allow(dead_code, unused_imports)]

mod exec;
mod forward;
mod session;
mod spec;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;

pub(crate) use exec::ExecOutput;
pub(crate) use forward::{Forward, LocalEndpoint};
use session::{Client, Ended, describe};
pub(crate) use spec::{DEFAULT_USER, TunnelSpec};

use crate::Error;

/// How the tunnel's SSH connections are made (Deis v1's `--known-hosts-file`,
/// `--strict-host-key-checking`, `--ssh-timeout`).
#[derive(Debug, Clone)]
pub(crate) struct SshOptions {
    /// Host keys, in OpenSSH's format (plain or hashed names).
    pub(crate) known_hosts_file: PathBuf,
    /// Refuse a host whose key the file lacks (a changed key is refused either way).
    pub(crate) strict_host_key_checking: bool,
    /// For connecting, the handshake and logging in; also the keepalive interval.
    pub(crate) timeout: Duration,
    /// A private key file to offer first, before the ssh-agent's keys (`SSH_AUTH_SOCK`);
    /// without one, `~/.ssh/id_ed25519`, `id_ecdsa` and `id_rsa` are offered after them.
    pub(crate) identity: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            known_hosts_file: home_dir().join(".ssh").join("known_hosts"),
            strict_host_key_checking: true,
            timeout: Duration::from_secs(10),
            identity: None,
        }
    }
}

/// The ssh-agent's socket, from `SSH_AUTH_SOCK`.
fn agent_from_env() -> Option<PathBuf> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// `$HOME`, else the password database's home, else `/`.
fn home_dir() -> PathBuf {
    std::env::home_dir().unwrap_or_else(|| PathBuf::from("/"))
}

/// An authenticated SSH connection. Clones share it; it stays open while a clone, a
/// [`Forward`] or a tunnel jumped through it is alive.
#[derive(Clone)]
pub(crate) struct Tunnel {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle<Client>,
    spec: TunnelSpec,
    options: SshOptions,
    /// The ssh-agent used to log in, used again for the hosts jumped to.
    agent: Option<PathBuf>,
    ended: Ended,
    /// The connection this one runs through, kept open with it.
    _via: Option<Tunnel>,
}

impl Tunnel {
    /// Connects to `spec` and logs in, within `options.timeout`, with the ssh-agent at
    /// `SSH_AUTH_SOCK` if there is one.
    pub(crate) async fn connect(spec: &TunnelSpec, options: &SshOptions) -> Result<Tunnel, Error> {
        Self::connect_with_agent(spec, options, agent_from_env()).await
    }

    /// [`Tunnel::connect`] with the ssh-agent at `agent`, or none.
    pub(crate) async fn connect_with_agent(
        spec: &TunnelSpec,
        options: &SshOptions,
        agent: Option<PathBuf>,
    ) -> Result<Tunnel, Error> {
        within(options.timeout, spec, async {
            let tcp = tokio::net::TcpStream::connect((spec.host.as_str(), spec.port))
                .await
                .map_err(|e| {
                    Error::Message(format!("ssh: cannot connect to {}: {e}", spec.address()))
                })?;
            let (handle, ended) = session::establish(tcp, spec, options, agent.as_deref()).await?;
            Ok(Tunnel::new(handle, spec, options, agent, ended, None))
        })
        .await
    }

    /// Connects to `spec` through this connection's host (a `direct-tcpip` channel carries the
    /// second SSH connection), with the same options, within their timeout. `spec` names the
    /// host as this one's host reaches it, and known_hosts must know it by that name.
    pub(crate) async fn jump(&self, spec: &TunnelSpec) -> Result<Tunnel, Error> {
        let options = &self.inner.options;
        self.check_open(&format!("cannot reach {}", spec.address()))?;
        within(options.timeout, spec, async {
            let channel = self
                .inner
                .handle
                .channel_open_direct_tcpip(spec.host.as_str(), spec.port.into(), "127.0.0.1", 0)
                .await
                .map_err(|e| self.failure(&format!("cannot reach {}", spec.address()), &e))?;
            let agent = self.inner.agent.clone();
            let (handle, ended) =
                session::establish(channel.into_stream(), spec, options, agent.as_deref()).await?;
            Ok(Tunnel::new(
                handle,
                spec,
                options,
                agent,
                ended,
                Some(self.clone()),
            ))
        })
        .await
    }

    fn new(
        handle: Handle<Client>,
        spec: &TunnelSpec,
        options: &SshOptions,
        agent: Option<PathBuf>,
        ended: Ended,
        via: Option<Tunnel>,
    ) -> Tunnel {
        Tunnel {
            inner: Arc::new(Inner {
                handle,
                spec: spec.clone(),
                options: options.clone(),
                agent,
                ended,
                _via: via,
            }),
        }
    }

    /// Where it goes.
    pub(crate) fn spec(&self) -> &TunnelSpec {
        &self.inner.spec
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Ends the connection politely; forwards and tunnels through it end with it.
    pub(crate) async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// The error for `what` failing with `e`: the connection's end, if it has ended.
    fn failure(&self, what: &str, e: &russh::Error) -> Error {
        Error::Message(match self.lost() {
            Some(lost) => format!("ssh: {what}: {lost}"),
            None => format!("ssh: {what} through {}: {}", self.spec(), describe(e)),
        })
    }

    /// An error for `what` if the connection has ended.
    fn check_open(&self, what: &str) -> Result<(), Error> {
        match self.lost() {
            Some(lost) => Err(Error::Message(format!("ssh: {what}: {lost}"))),
            None => Ok(()),
        }
    }

    /// "the connection to ... was lost (why)", once it has been.
    fn lost(&self) -> Option<String> {
        if !self.is_closed() {
            return None;
        }
        let why = self
            .inner
            .ended
            .lock()
            .ok()
            .and_then(|ended| ended.clone())
            .unwrap_or_else(|| "it closed".to_owned());
        Some(format!(
            "the SSH connection to {} was lost ({why})",
            self.spec().address()
        ))
    }
}

/// Runs `work` within `timeout`, naming Deis's `--ssh-timeout` when it takes longer.
async fn within<T>(
    timeout: Duration,
    spec: &TunnelSpec,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        Error::Message(format!(
            "ssh: {spec} did not let us in within {timeout:?} (raise --ssh-timeout if the host \
             is slow to answer)"
        ))
    })?
}
