//! A running platform as the user's day meets it, whichever way it was started (the README's
//! `deis-platform` process, or `deisctl` with a container per component), and the user's own
//! tools against it: the built `deis` client in a home directory of its own, `git` over the
//! system OpenSSH client, HTTPS with SNI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::containers::{Containers, workspace_binary};
use crate::single_host::SingleHost;
use crate::support::{SshKey, User};

/// What the day's flows need to know of a platform beyond [`User`].
pub(crate) trait Setup: User {
    /// The URL `deis register` takes.
    fn controller_url(&self) -> String;
    /// The router's HTTPS address.
    fn https(&self) -> SocketAddr;
    /// The logger's API address.
    fn logger(&self) -> SocketAddr;
    /// Every port the platform listens on (controller, builder, router, logger, ...).
    fn platform_ports(&self) -> Vec<u16>;
    /// The Docker label (`key=value`) on every container the platform runs for apps.
    fn app_label(&self) -> String;
    /// The image Dockerfile apps build FROM (busybox with `httpd`).
    fn base_image(&self) -> String;
    /// Whether the builder still holds `app`'s repository.
    fn has_repository(&self, app: &str) -> bool;
    /// Plays a reboot's part for the apps' isolation: the firewall rules gone from the kernel
    /// and the platform restarted as the host brings it back; false where the platform's
    /// every start sets them anyway (nothing done).
    async fn reboot(&self) -> bool;
}

impl Setup for Containers {
    fn controller_url(&self) -> String {
        format!("http://{}", self.addr(8000))
    }
    fn https(&self) -> SocketAddr {
        self.addr(443)
    }
    fn logger(&self) -> SocketAddr {
        self.addr(8088)
    }
    fn platform_ports(&self) -> Vec<u16> {
        vec![
            2379, 2380, 5432, 5000, 8000, 8088, 514, 2222, 2224, 80, 443, 9090,
        ]
    }
    fn app_label(&self) -> String {
        format!("deis.platform={}", self.prefix)
    }
    fn base_image(&self) -> String {
        self.app_base_image()
    }
    fn has_repository(&self, app: &str) -> bool {
        let builder = format!("{}-builder", self.prefix);
        let path = format!("/var/lib/deis/builder/repos/{app}.git");
        std::process::Command::new("docker")
            .args(["exec", &builder, "test", "-e", &path])
            .status()
            .is_ok_and(|s| s.success())
    }
    async fn reboot(&self) -> bool {
        crate::containers::forget_firewall(&format!("{}-apps", self.prefix));
        // Docker restarts the platform's containers by itself; the controller's is the one
        // that matters here.
        let controller = format!("{}-controller", self.prefix);
        let restarted = std::process::Command::new("docker")
            .args(["restart", "--time", "15", &controller])
            .output()
            .expect("docker runs");
        assert!(restarted.status.success(), "docker restart {controller}");
        let addr = self.addr(8000);
        deis_testkit::eventually(
            std::time::Duration::from_secs(60),
            "the controller back",
            || async {
                match deis_testkit::http_get(addr, "/healthz") {
                    Ok((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        true
    }
}

impl Setup for SingleHost {
    fn controller_url(&self) -> String {
        format!("http://{}", self.controller)
    }
    fn https(&self) -> SocketAddr {
        self.https
    }
    fn logger(&self) -> SocketAddr {
        self.logger
    }
    fn platform_ports(&self) -> Vec<u16> {
        self.ports()
    }
    fn app_label(&self) -> String {
        self.labels.clone()
    }
    fn base_image(&self) -> String {
        self.image.clone()
    }
    fn has_repository(&self, app: &str) -> bool {
        self.dir
            .path()
            .join(format!("data/builder/repos/{app}.git"))
            .exists()
    }
    async fn reboot(&self) -> bool {
        false
    }
}

/// The `deis` client of one user: its own `$HOME` (settings file) and SSH key.
pub(crate) struct Deis {
    pub(crate) home: PathBuf,
    pub(crate) key: SshKey,
}

/// What a command printed, and whether it succeeded.
pub(crate) struct Ran {
    pub(crate) ok: bool,
    pub(crate) code: Option<i32>,
    pub(crate) out: String,
}

fn ran(output: Output) -> Ran {
    Ran {
        ok: output.status.success(),
        code: output.status.code(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

impl Deis {
    /// A new user's client with a fresh key, registered and logged in on `setup`, key added.
    pub(crate) async fn register(setup: &impl Setup, name: &str) -> Deis {
        let home = setup.dir().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("home directory");
        let key = SshKey::generate(&home, name);
        let deis = Deis { home, key };
        let url = setup.controller_url();
        deis.ok(
            setup.dir(),
            &[
                "register",
                &url,
                &format!("--username={name}"),
                "--password=pw",
                &format!("--email={name}@example.com"),
            ],
        )
        .await;
        let public = deis.home.join(format!("{name}.pub"));
        std::fs::write(&public, format!("{}\n", deis.key.public)).expect("public key file");
        deis.ok(setup.dir(), &["keys:add", &public.display().to_string()])
            .await;
        deis
    }

    /// The command, ready to run in `cwd`.
    pub(crate) fn command(&self, cwd: &Path, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(workspace_binary("deis"));
        command
            .args(args)
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env_remove("DEIS_PROFILE")
            .env("GIT_SSH_COMMAND", self.key.ssh_command())
            .kill_on_drop(true);
        command
    }

    pub(crate) async fn run(&self, cwd: &Path, args: &[&str]) -> Ran {
        ran(self.command(cwd, args).output().await.expect("deis runs"))
    }

    /// Runs `deis`, expecting success: what it printed.
    pub(crate) async fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let ran = self.run(cwd, args).await;
        assert!(ran.ok, "deis {args:?} failed: {}", ran.out);
        ran.out
    }

    /// `git push deis master` from `work` with this user's key.
    pub(crate) async fn push(&self, work: &Path) -> Ran {
        ran(tokio::process::Command::new("git")
            .args(["push", "deis", "master"])
            .current_dir(work)
            .env("HOME", &self.home)
            .env("GIT_SSH_COMMAND", self.key.ssh_command())
            .output()
            .await
            .expect("git push runs"))
    }
}

/// A self-signed certificate and key (PEM) for `name`, which is also its common name (the
/// domain Deis files a certificate under).
pub(crate) fn certificate(name: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("parameters");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// `GET /` over HTTPS with SNI `host`, trusting only `trusted`: the status and body, or why the
/// handshake failed.
pub(crate) async fn https_get(
    addr: SocketAddr,
    host: &str,
    trusted: &str,
) -> Result<(u16, String), String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(trusted.as_bytes())
        .map_err(|e| e.to_string())?;
    roots.add(der).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name =
        rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Prints a measured figure (`cargo nextest run -p deis-e2e --no-capture` shows them;
/// docs/benchmarks.md records them).
#[allow(clippy::print_stdout)]
pub(crate) fn figure(line: std::fmt::Arguments<'_>) {
    println!("{line}");
}
