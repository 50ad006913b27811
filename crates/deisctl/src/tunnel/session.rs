//! One SSH connection: the host key check against known_hosts, and public-key authentication
//! with ssh-agent and key files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::{self, DisconnectReason, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{MethodKind, client::AuthResult};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{SshOptions, TunnelSpec};
use crate::Error;

/// Why the connection ended, once it has: told to whoever uses it afterwards.
pub(super) type Ended = Arc<Mutex<Option<String>>>;

/// The russh event handler of one connection.
pub(super) struct Client {
    spec: TunnelSpec,
    known_hosts: PathBuf,
    strict: bool,
    ended: Ended,
}

/// What can end a connection attempt inside russh.
#[derive(Debug)]
pub(super) enum ClientError {
    Ssh(russh::Error),
    /// The host key was refused; the message says why and what to do.
    HostKey(String),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, ClientError> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(ClientError::HostKey(format!(
                    "ssh: {} presented a host certificate, which deisctl does not check; \
                     configure it to offer a plain host key",
                    self.spec.address()
                )));
            }
        };
        check_host_key(&self.spec, key, &self.known_hosts, self.strict)
            .map(|()| true)
            .map_err(ClientError::HostKey)
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<ClientError>,
    ) -> Result<(), ClientError> {
        let why = match &reason {
            DisconnectReason::ReceivedDisconnect(info) if info.message.is_empty() => {
                format!("{} closed it ({:?})", self.spec.host, info.reason_code)
            }
            DisconnectReason::ReceivedDisconnect(info) => {
                format!("{} closed it: {}", self.spec.host, info.message)
            }
            DisconnectReason::Error(ClientError::Ssh(e)) => describe(e),
            DisconnectReason::Error(ClientError::HostKey(m)) => m.clone(),
        };
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert(why);
        }
        match reason {
            DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            DisconnectReason::Error(e) => Err(e),
        }
    }
}

/// russh's error in words an operator reads.
pub(super) fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::KeepaliveTimeout => "the host stopped answering keepalives".to_owned(),
        russh::Error::Disconnect => "the connection closed".to_owned(),
        russh::Error::IO(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the connection closed unexpectedly".to_owned()
        }
        russh::Error::IO(io) => io.to_string(),
        russh::Error::ChannelOpenFailure(why) => match why {
            russh::ChannelOpenFailure::ConnectFailed => {
                "the host could not connect to it".to_owned()
            }
            russh::ChannelOpenFailure::AdministrativelyProhibited => {
                "the host's sshd does not allow it (AllowTcpForwarding, \
                 AllowStreamLocalForwarding, PermitOpen)"
                    .to_owned()
            }
            other => format!("the host refused ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// Accepts `key` for `spec` if the known_hosts file holds it; an unknown key only without
/// strict checking; a changed key never.
fn check_host_key(
    spec: &TunnelSpec,
    key: &PublicKey,
    known_hosts: &Path,
    strict: bool,
) -> Result<(), String> {
    let file = known_hosts.display();
    let seen = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
    match russh::keys::check_known_hosts_path(&spec.host, spec.port, key, known_hosts) {
        Ok(true) => Ok(()),
        Ok(false) if !strict => Ok(()),
        Ok(false) => Err(format!(
            "ssh: the host key of {} is unknown ({seen} is not in {file}); if it is the host's \
             key, add it with `ssh-keyscan -p {} {} >> {file}`, or connect with \
             --strict-host-key-checking=false",
            spec.address(),
            spec.port,
            spec.host,
        )),
        Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
            "ssh: the host key of {} has CHANGED (it is now {seen}; line {line} of {file} holds \
             another): someone may be intercepting the connection. If the host was reinstalled, \
             remove the old key with `ssh-keygen -f {file} -R '{}'` and add the new one",
            spec.address(),
            spec.known_hosts_name(),
        )),
        Err(e) => Err(format!(
            "ssh: cannot check the host key of {} against {file}: {e}",
            spec.address()
        )),
    }
}

/// russh's host key algorithms, those of the keys known_hosts holds for `spec` first, so that a
/// host with several keys shows the one that can be checked (as OpenSSH does).
fn host_key_order(spec: &TunnelSpec, known_hosts: &Path) -> Vec<Algorithm> {
    let known: Vec<Algorithm> =
        russh::keys::known_hosts::known_host_keys_path(&spec.host, spec.port, known_hosts)
            .map(|keys| keys.into_iter().map(|(_, k)| k.algorithm()).collect())
            .unwrap_or_default();
    let same = |a: &Algorithm, b: &Algorithm| match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    };
    let mut order = russh::Preferred::DEFAULT.key.to_vec();
    order.sort_by_key(|a| !known.iter().any(|k| same(a, k)));
    order
}

/// The russh configuration for a connection with `options`.
fn config(spec: &TunnelSpec, options: &SshOptions) -> client::Config {
    let preferred = russh::Preferred {
        key: Cow::Owned(host_key_order(spec, &options.known_hosts_file)),
        ..russh::Preferred::default()
    };
    client::Config {
        preferred,
        // A host that vanishes without closing the connection is noticed after four
        // unanswered keepalives instead of never.
        keepalive_interval: Some(options.timeout.max(std::time::Duration::from_secs(1))),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..client::Config::default()
    }
}

/// An authenticated connection over `stream` (a TCP connection, or a channel of another
/// connection). Not bounded in time: the caller applies the timeout.
pub(super) async fn establish<S>(
    stream: S,
    spec: &TunnelSpec,
    options: &SshOptions,
    agent: Option<&Path>,
) -> Result<(Handle<Client>, Ended), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ended: Ended = Arc::default();
    let client = Client {
        spec: spec.clone(),
        known_hosts: options.known_hosts_file.clone(),
        strict: options.strict_host_key_checking,
        ended: ended.clone(),
    };
    let mut handle = client::connect_stream(Arc::new(config(spec, options)), stream, client)
        .await
        .map_err(|e| match e {
            ClientError::HostKey(message) => Error::Message(message),
            ClientError::Ssh(e) => Error::Message(format!(
                "ssh: no SSH session with {}: {}",
                spec.address(),
                describe(&e)
            )),
        })?;
    authenticate(&mut handle, spec, options, agent).await?;
    Ok((handle, ended))
}

/// What authentication tried, for the message when nothing worked.
#[derive(Default)]
struct Attempts {
    refused: Vec<String>,
    unusable: Vec<String>,
    publickey_allowed: bool,
}

impl Attempts {
    /// Notes a refusal; whether trying more keys is worth it.
    fn refused(&mut self, what: String, result: &AuthResult) -> bool {
        self.refused.push(what);
        match result {
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.publickey_allowed = remaining_methods.contains(&MethodKind::PublicKey);
                self.publickey_allowed
            }
            AuthResult::Success => true,
        }
    }
}

/// Logs in with the identity file given, then the agent's keys, then (with no identity given)
/// `~/.ssh/id_ed25519`, `id_ecdsa` and `id_rsa`. The given identity goes first so that an agent
/// holding many keys does not use up the server's `MaxAuthTries` before it.
async fn authenticate(
    handle: &mut Handle<Client>,
    spec: &TunnelSpec,
    options: &SshOptions,
    agent: Option<&Path>,
) -> Result<(), Error> {
    let mut attempts = Attempts {
        publickey_allowed: true,
        ..Attempts::default()
    };
    if let Some(identity) = &options.identity
        && try_key_file(handle, spec, identity, true, &mut attempts).await?
    {
        return Ok(());
    }
    if attempts.publickey_allowed
        && let Some(socket) = agent
        && try_agent(handle, spec, socket, &mut attempts).await?
    {
        return Ok(());
    }
    if options.identity.is_none() {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            if !attempts.publickey_allowed || handle.is_closed() {
                break;
            }
            let path = super::home_dir().join(".ssh").join(name);
            if try_key_file(handle, spec, &path, false, &mut attempts).await? {
                return Ok(());
            }
        }
    }
    Err(auth_failure(spec, options, agent, &attempts))
}

fn auth_failure(
    spec: &TunnelSpec,
    options: &SshOptions,
    agent: Option<&Path>,
    attempts: &Attempts,
) -> Error {
    let mut why = Vec::new();
    if attempts.refused.is_empty() {
        why.push(match (agent, &options.identity) {
            (None, None) => "there is no key to offer: no ssh-agent (SSH_AUTH_SOCK is unset) \
                             and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa"
                .to_owned(),
            _ => "there is no key to offer".to_owned(),
        });
    } else {
        why.push(format!(
            "the server refused {}",
            attempts.refused.join(", ")
        ));
    }
    if !attempts.publickey_allowed {
        why.push("it allows no more public-key attempts".to_owned());
    }
    why.extend(attempts.unusable.iter().cloned());
    Error::Message(format!(
        "ssh: authentication as {} failed: {}. Add your public key to ~{}/.ssh/authorized_keys \
         there, or load the right key into ssh-agent (ssh-add)",
        spec,
        why.join("; "),
        spec.user
    ))
}

/// The signature hash for an RSA `key`: the best the server accepts.
async fn rsa_hash(handle: &Handle<Client>, key: &PublicKey) -> Option<HashAlg> {
    if key.algorithm().is_rsa() {
        handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten()
    } else {
        None
    }
}

/// Offers the key in `path`; whether it logged in. A missing default file is skipped quietly.
async fn try_key_file(
    handle: &mut Handle<Client>,
    spec: &TunnelSpec,
    path: &Path,
    explicit: bool,
    attempts: &mut Attempts,
) -> Result<bool, Error> {
    if !explicit && !path.exists() {
        return Ok(false);
    }
    let key = match russh::keys::load_secret_key(path, None) {
        Ok(key) => key,
        Err(russh::keys::Error::KeyIsEncrypted) => {
            attempts.unusable.push(format!(
                "{} is encrypted and deisctl cannot ask for its passphrase (ssh-add it to the \
                 agent instead)",
                path.display()
            ));
            return Ok(false);
        }
        Err(e) => {
            attempts
                .unusable
                .push(format!("cannot read key {}: {e}", path.display()));
            return Ok(false);
        }
    };
    let hash = rsa_hash(handle, key.public_key()).await;
    let result = handle
        .authenticate_publickey(
            spec.user.as_str(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await
        .map_err(|e| {
            Error::Message(format!(
                "ssh: authentication as {spec} failed: {}",
                describe(&e)
            ))
        })?;
    if result.success() {
        return Ok(true);
    }
    attempts.refused(path.display().to_string(), &result);
    Ok(false)
}

/// Offers the keys of the ssh-agent at `socket`; whether one logged in.
async fn try_agent(
    handle: &mut Handle<Client>,
    spec: &TunnelSpec,
    socket: &Path,
    attempts: &mut Attempts,
) -> Result<bool, Error> {
    let mut agent = match AgentClient::connect_uds(socket).await {
        Ok(agent) => agent,
        Err(e) => {
            attempts.unusable.push(format!(
                "no ssh-agent at {} (SSH_AUTH_SOCK): {e}",
                socket.display()
            ));
            return Ok(false);
        }
    };
    // OpenSSH's agent applies destination constraints to bound sessions; older agents refuse
    // the extension, and then the keys work unbound.
    if let Some(binding) = handle.agent_session_binding() {
        let _ = agent.bind_session(binding, false).await;
    }
    let identities = match agent.request_identities().await {
        Ok(identities) => identities,
        Err(e) => {
            attempts.unusable.push(format!(
                "the ssh-agent at {} did not list its keys: {e}",
                socket.display()
            ));
            return Ok(false);
        }
    };
    if identities.is_empty() {
        attempts
            .unusable
            .push("the ssh-agent holds no keys".to_owned());
    }
    for identity in identities {
        if !attempts.publickey_allowed || handle.is_closed() {
            break;
        }
        let (result, comment) = match identity {
            AgentIdentity::PublicKey { key, comment } => {
                let hash = rsa_hash(handle, &key).await;
                let result = handle
                    .authenticate_publickey_with(spec.user.as_str(), key, hash, &mut agent)
                    .await;
                (result, comment)
            }
            AgentIdentity::Certificate {
                certificate,
                comment,
            } => {
                let hash = match certificate.public_key().algorithm().is_rsa() {
                    true => handle
                        .best_supported_rsa_hash()
                        .await
                        .ok()
                        .flatten()
                        .flatten(),
                    false => None,
                };
                let result = handle
                    .authenticate_certificate_with(
                        spec.user.as_str(),
                        certificate,
                        hash,
                        &mut agent,
                    )
                    .await;
                (result, comment)
            }
        };
        let what = format!("agent key '{comment}'");
        match result {
            Ok(result) if result.success() => return Ok(true),
            Ok(result) => {
                if !attempts.refused(what, &result) {
                    break;
                }
            }
            Err(e) => attempts
                .unusable
                .push(format!("the ssh-agent did not sign with {what}: {e}")),
        }
    }
    Ok(false)
}
