//! Debian's OpenSSH server (`/usr/sbin/sshd`) with a host key, a config and an authorized keys
//! file of its own, either on a free loopback port or on port 22 of an address inside a network
//! namespace (a simulated host). Public-key logins only, TCP and unix-socket forwarding allowed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::{ServiceProcess, free_port, require};

/// How long sshd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An ed25519 key pair made with `ssh-keygen`, without a passphrase. Clones share the files, so
/// several servers can accept the same client key; the files go with the last clone.
#[derive(Clone)]
pub struct SshKeyPair {
    dir: Arc<TempDir>,
    private: PathBuf,
    public: String,
}

impl SshKeyPair {
    /// A new key pair in a temporary directory. Panics if `ssh-keygen` is missing or fails.
    pub fn generate() -> SshKeyPair {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let private = dir.path().join("id_ed25519");
        let public = keygen(&private, "deis-test-client");
        SshKeyPair {
            dir: Arc::new(dir),
            private,
            public,
        }
    }

    /// The private key file (OpenSSH format, mode 0600).
    pub fn private_key(&self) -> &Path {
        &self.private
    }

    /// The public key as an authorized_keys line: `ssh-ed25519 AAAA... deis-test-client`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The directory that holds the key files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `ssh-keygen` for a new ed25519 key at `path`; the public key line.
fn keygen(path: &Path, comment: &str) -> String {
    let out = Command::new(require("ssh-keygen", "openssh-client"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}"));
    assert!(
        out.status.success(),
        "ssh-keygen -f {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let public = path.with_extension("pub");
    std::fs::read_to_string(&public)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", public.display()))
        .trim()
        .to_owned()
}

/// A running OpenSSH server; killed (with the connections it serves) when dropped.
pub struct Sshd {
    addr: SocketAddr,
    netns: Option<String>,
    user: String,
    host_key: String,
    client: SshKeyPair,
    authorized_keys: PathBuf,
    process: ServiceProcess,
    dir: TempDir,
}

impl Sshd {
    /// A server on a free loopback port that accepts a new client key ([`Sshd::client_key`]).
    pub async fn start() -> Sshd {
        Self::start_with_key(&SshKeyPair::generate()).await
    }

    /// A server on a free loopback port that accepts `client`.
    pub async fn start_with_key(client: &SshKeyPair) -> Sshd {
        let mut last = String::new();
        // The port was free a moment ago; another process may take it before sshd binds it.
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match Self::launch(addr, None, None, client).await {
                Ok(sshd) => return sshd,
                Err(output) => last = output,
            }
        }
        panic!("sshd could not bind a loopback port; its last output:\n{last}");
    }

    /// A server on `ip` port 22 inside the network namespace `netns` (a name under
    /// `/run/netns/`, or a path), started with `nsenter --net=<ns> /usr/sbin/sshd`, that accepts
    /// `client`.
    pub async fn start_in_netns(netns: &str, ip: IpAddr, client: &SshKeyPair) -> Sshd {
        let path = if netns.starts_with('/') {
            netns.to_owned()
        } else {
            format!("/run/netns/{netns}")
        };
        match Self::launch(SocketAddr::new(ip, 22), Some(path), None, client).await {
            Ok(sshd) => sshd,
            Err(output) => {
                panic!("sshd did not start in {netns} on {ip}:22; its output:\n{output}")
            }
        }
    }

    /// A server on a simulated host of a [`crate::Cluster`]: on `ip` port 22 in the network
    /// namespace file `netns` and the mount namespace file `mount_ns` (where `/run` is the
    /// host's own, with its `sshd` folder), accepting `client`.
    pub async fn start_on_host(
        netns: &Path,
        mount_ns: &Path,
        ip: IpAddr,
        client: &SshKeyPair,
    ) -> Sshd {
        let net = netns.display().to_string();
        match Self::launch(
            SocketAddr::new(ip, 22),
            Some(net),
            Some(mount_ns.to_path_buf()),
            client,
        )
        .await
        {
            Ok(sshd) => sshd,
            Err(output) => panic!("sshd did not start on {ip}:22; its output:\n{output}"),
        }
    }

    /// Starts sshd and waits until it listens; on failure, what it wrote if it exited because
    /// the address was taken (the caller may try another port). Panics on any other failure.
    async fn launch(
        addr: SocketAddr,
        netns: Option<String>,
        mount_ns: Option<PathBuf>,
        client: &SshKeyPair,
    ) -> Result<Sshd, String> {
        let sshd = require("sshd", "openssh-server");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        // Debian's sshd refuses to start without its privilege separation directory, which
        // only the service's systemd unit creates.
        std::fs::create_dir_all("/run/sshd")
            .unwrap_or_else(|e| panic!("cannot create /run/sshd for sshd (this needs root): {e}"));
        let host_key_file = dir.path().join("ssh_host_ed25519_key");
        let host_key = keygen(&host_key_file, "deis-test-host")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized_keys = dir.path().join("authorized_keys");
        write_file(&authorized_keys, &format!("{}\n", client.public_key()));
        let pid_file = dir.path().join("sshd.pid");
        let config = dir.path().join("sshd_config");
        write_file(
            &config,
            &format!(
                "ListenAddress {addr}\n\
                 HostKey {host_key}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {keys}\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 AllowTcpForwarding yes\n\
                 AllowStreamLocalForwarding yes\n\
                 PermitOpen any\n\
                 StreamLocalBindUnlink yes\n\
                 PrintMotd no\n\
                 MaxStartups 100\n\
                 LogLevel VERBOSE\n",
                host_key = host_key_file.display(),
                pid = pid_file.display(),
                keys = authorized_keys.display(),
            ),
        );
        let mut command = match &netns {
            Some(ns) => {
                let mut c = Command::new(require("nsenter", "util-linux"));
                // nsenter execs sshd (no fork for --net alone): the child's PID is sshd's.
                c.arg(format!("--net={ns}"));
                if let Some(mount) = &mount_ns {
                    // A simulated host's own `/run` (its Docker socket) for the sessions.
                    c.arg(format!("--mount={}", mount.display()));
                }
                c.arg("--").arg(&sshd);
                c
            }
            None => Command::new(&sshd),
        };
        command.arg("-D").arg("-e").arg("-f").arg(&config);
        let log = dir.path().join("sshd.log");
        let mut process = ServiceProcess::spawn("sshd", command, &log);

        // sshd writes its PID file once its listening sockets are bound.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !process.is_running() {
                let output = process.output();
                if netns.is_none() && output.contains("Address already in use") {
                    return Err(output);
                }
                panic!("sshd ({addr}) exited early; its output:\n{output}");
            }
            let listening = pid_file.exists() && (netns.is_some() || banner(addr).is_ok());
            if listening {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {START_TIMEOUT:?} waiting for sshd to listen on {addr}; \
                     its output:\n{}",
                    process.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Sshd {
            addr,
            netns,
            user: current_user(),
            host_key,
            client: client.clone(),
            authorized_keys,
            process,
            dir,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The network namespace it runs in (`/run/netns/<name>`), if not this one.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The user to log in as: the current one (root when the tests run as root).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key file of the client key it accepts.
    pub fn client_key(&self) -> &Path {
        self.client.private_key()
    }

    /// The client key pair it accepts.
    pub fn key_pair(&self) -> &SshKeyPair {
        &self.client
    }

    /// Also accepts `key`.
    pub fn authorize(&self, key: &SshKeyPair) {
        let mut file = std::fs::File::options()
            .append(true)
            .open(&self.authorized_keys)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.authorized_keys.display()));
        writeln!(file, "{}", key.public_key())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.authorized_keys.display()));
    }

    /// Its host public key: `ssh-ed25519 AAAA...`.
    pub fn host_public_key(&self) -> &str {
        &self.host_key
    }

    /// Its known_hosts line, as `ssh-keyscan` writes it: `[127.0.0.1]:2222 ssh-ed25519 AAAA...`,
    /// or `10.0.0.2 ssh-ed25519 AAAA...` on port 22.
    pub fn known_hosts_line(&self) -> String {
        let ip = self.addr.ip();
        match self.addr.port() {
            22 => format!("{ip} {}", self.host_key),
            port => format!("[{ip}]:{port} {}", self.host_key),
        }
    }

    /// Appends [`Sshd::known_hosts_line`] to the file at `path`, creating it and its directory.
    pub fn write_known_hosts(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        let mut file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        writeln!(file, "{}", self.known_hosts_line())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// A known_hosts file of its own, holding only this server's line.
    pub fn known_hosts_file(&self) -> PathBuf {
        let path = self.dir.path().join("known_hosts");
        if !path.exists() {
            self.write_known_hosts(&path);
        }
        path
    }

    /// The PID of the listening sshd.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What sshd logged so far (`LogLevel VERBOSE`: logins, forwardings, refusals).
    pub fn output(&self) -> String {
        self.process.output()
    }

    /// Kills the processes serving the current connections (sshd's descendants), as a host
    /// that goes away would; the server keeps listening. The number killed.
    pub fn drop_connections(&self) -> usize {
        let pids = descendants(self.process.pid());
        for pid in &pids {
            if let Ok(pid) = i32::try_from(*pid) {
                // The process may have exited already.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        pids.len()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The per-connection processes outlive the listener; the field's drop kills sshd itself.
        self.drop_connections();
    }
}

/// The current user's name.
fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| panic!("cannot tell the current user's name"))
}

/// Whether an SSH server answers on `addr` with its version line.
fn banner(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 8];
    stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
    if buf.starts_with(b"SSH-") {
        Ok(())
    } else {
        Err(format!("not an SSH banner: {buf:?}"))
    }
}

/// Every process below `root`, children first found by scanning `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

fn write_file(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::{Command, Output};

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// OpenSSH's own client, with host key checking against `known_hosts` and no agent.
    fn ssh(sshd: &Sshd, known_hosts: &Path, key: &Path, remote: &str) -> Command {
        let mut command = match sshd.netns() {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg("--").arg("ssh");
                c
            }
            None => Command::new(require("ssh", "openssh-client")),
        };
        command
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg("/dev/null")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .arg("-i")
            .arg(key)
            .arg("-p")
            .arg(sshd.addr().port().to_string())
            .arg(format!("{}@{}", sshd.user(), sshd.addr().ip()))
            .arg(remote);
        command
    }

    fn run(mut command: Command) -> Output {
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
    }

    #[tokio::test]
    async fn openssh_logs_in_with_the_client_key_and_checks_the_host_key() {
        let sshd = Sshd::start().await;
        let out = run(ssh(
            &sshd,
            &sshd.known_hosts_file(),
            sshd.client_key(),
            "echo hello from $USER",
        ));
        assert!(
            out.status.success(),
            "{}\nsshd:\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.output()
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("hello from {}", sshd.user())
        );
        assert!(
            sshd.output().contains("Accepted publickey"),
            "{}",
            sshd.output()
        );
    }

    #[tokio::test]
    async fn a_shared_key_opens_two_servers_and_another_key_opens_none() {
        let key = SshKeyPair::generate();
        let (a, b) = (
            Sshd::start_with_key(&key).await,
            Sshd::start_with_key(&key).await,
        );
        assert_ne!(a.addr(), b.addr());
        for sshd in [&a, &b] {
            let out = run(ssh(
                sshd,
                &sshd.known_hosts_file(),
                key.private_key(),
                "true",
            ));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stranger = SshKeyPair::generate();
        let out = run(ssh(
            &a,
            &a.known_hosts_file(),
            stranger.private_key(),
            "true",
        ));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        a.authorize(&stranger);
        let out = run(ssh(
            &a,
            &a.known_hosts_file(),
            stranger.private_key(),
            "true",
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn an_unknown_host_key_is_refused_by_a_strict_client() {
        let sshd = Sshd::start().await;
        let empty = sshd.dir.path().join("empty_known_hosts");
        write_file(&empty, "");
        let out = run(ssh(&sshd, &empty, sshd.client_key(), "true"));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn dropped_connections_end_and_the_server_stays() {
        let sshd = Sshd::start().await;
        let known_hosts = sshd.known_hosts_file();
        let mut long = ssh(&sshd, &known_hosts, sshd.client_key(), "sleep 60");
        let mut child = long.spawn().expect("start ssh");
        let started = Instant::now();
        let mut killed = 0;
        while killed == 0 && started.elapsed() < Duration::from_secs(10) {
            if sshd.output().contains("Accepted publickey") {
                killed = sshd.drop_connections();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            killed > 0,
            "no connection to drop; sshd:\n{}",
            sshd.output()
        );
        let status = child.wait().expect("ssh ends");
        assert!(!status.success());
        assert!(started.elapsed() < Duration::from_secs(30));
        let out = run(ssh(&sshd, &known_hosts, sshd.client_key(), "true"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn the_server_stops_with_the_fixture() {
        let sshd = Sshd::start().await;
        let addr = sshd.addr();
        drop(sshd);
        assert!(
            TcpStream::connect(addr).is_err(),
            "sshd still listens on {addr}"
        );
    }

    /// A network namespace with only its loopback, removed when dropped.
    struct Netns(String);

    impl Netns {
        fn create() -> Netns {
            let ip = require("ip", "iproute2");
            let name = format!("deis-sshd-{}", crate::unique_id());
            for args in [
                vec!["netns", "add", &name],
                vec!["-n", &name, "link", "set", "lo", "up"],
            ] {
                let out = run({
                    let mut c = Command::new(&ip);
                    c.args(&args);
                    c
                });
                assert!(
                    out.status.success(),
                    "ip {} failed (this needs root): {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Netns(name)
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }

    #[tokio::test]
    async fn a_server_in_a_network_namespace_listens_on_port_22_there() {
        let ns = Netns::create();
        let key = SshKeyPair::generate();
        let sshd = Sshd::start_in_netns(&ns.0, LOOPBACK, &key).await;
        assert_eq!(sshd.addr(), SocketAddr::new(LOOPBACK, 22));
        assert!(
            sshd.known_hosts_line()
                .starts_with("127.0.0.1 ssh-ed25519 ")
        );
        let out = run(ssh(
            &sshd,
            &sshd.known_hosts_file(),
            key.private_key(),
            "echo in",
        ));
        assert!(
            out.status.success(),
            "{}\nsshd:\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.output()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "in");
    }
}
