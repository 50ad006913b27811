//! A user's tools, whichever platform they meet: SSH keys from `ssh-keygen`, `git` work trees,
//! HTTP and HTTPS requests, the built `deis` client in a home directory of its own, and the
//! `docker` command line the tests look at the engine with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use deis_testkit::require;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::setup::Setup;

/// The controller's host name through the router.
pub(crate) const API: &str = "deis.example.com";

/// Where this build's binaries are (`target/<profile>`, next to the test executable's `deps/`).
pub(crate) fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_owned()
}

/// A workspace binary, or a failure that says how to build it.
pub(crate) fn workspace_binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing; build the workspace first: cargo build --workspace --bins \
         (with --release for the benchmarks)",
        path.display()
    );
    path
}

/// An app name no other test on this Docker engine uses (container names are per engine).
pub(crate) fn app_name(base: &str) -> String {
    format!("{base}-{}", deis_testkit::unique_id())
}

pub(crate) fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// The shell command of an app that serves `text` (as the shell expands it) on `$PORT` with
/// busybox `httpd`.
pub(crate) fn serve(text: &str) -> String {
    format!(
        "mkdir -p /tmp/www && echo {text} > /tmp/www/index.html && exec httpd -f -p ${{PORT:-5000}} -h /tmp/www"
    )
}

/// A Dockerfile app on `image` that serves `text`.
pub(crate) fn serving_dockerfile(image: &str, text: &str) -> String {
    format!("FROM {image}\nCMD {}\n", serve(text))
}

/// An SSH key pair made by `ssh-keygen`.
#[derive(Clone)]
pub(crate) struct SshKey {
    pub(crate) private: PathBuf,
    pub(crate) public: String,
}

impl SshKey {
    /// A new key pair in `dir`, commented `name` (its file name is unique, so flows sharing a
    /// platform's directory never meet each other's keys).
    pub(crate) fn generate(dir: &Path, name: &str) -> SshKey {
        let private = dir.join(format!("key-{name}-{}", deis_testkit::unique_id()));
        let status = std::process::Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        let public =
            std::fs::read_to_string(format!("{}.pub", private.display())).expect("public key");
        SshKey {
            private,
            public: public.trim().to_owned(),
        }
    }

    /// The `ssh` command line git should use.
    pub(crate) fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.private.display()
        )
    }
}

/// A git work tree with one commit of `files`.
pub(crate) fn work_tree(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let work = dir.to_owned();
    std::fs::create_dir_all(&work).expect("work dir");
    git(&work, &["init", "--quiet", "--initial-branch=master"]);
    commit(&work, files, "first");
    work
}

/// Writes `files` and commits them.
pub(crate) fn commit(work: &Path, files: &[(&str, &str)], message: &str) {
    for (name, text) in files {
        let path = work.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("write");
        if name.starts_with("bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    git(work, &["add", "-A"]);
    git(
        work,
        &[
            "-c",
            "user.name=dev",
            "-c",
            "user.email=dev@example.com",
            "commit",
            "--quiet",
            "-m",
            message,
        ],
    );
}

fn git(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `status` and body of a raw HTTP/1.1 answer.
fn answer(raw: &str) -> (u16, String) {
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// One HTTP/1.1 request; the status and body.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, "connection refused".to_owned());
    };
    let auth = token
        .map(|t| format!("Authorization: token {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, "write failed".to_owned());
    }
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw).await;
    answer(&raw)
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
    Ok(answer(&String::from_utf8_lossy(&raw)))
}

/// Docker's answer, one line per entry.
pub(crate) fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    lines(&String::from_utf8_lossy(&out.stdout))
}

/// The non-empty lines of a command's output.
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// What a command (`what`, for the failure message) printed, expecting it to have succeeded.
pub(crate) fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Prints a measured figure (`cargo nextest run -p deis-e2e --no-capture` shows them;
/// docs/benchmarks.md records them).
#[allow(clippy::print_stdout)]
pub(crate) fn figure(line: std::fmt::Arguments<'_>) {
    println!("{line}");
}

/// The `deis` client of one user: its own `$HOME` (settings file) and SSH key.
pub(crate) struct Deis {
    /// The user name (the password is `pw`).
    pub(crate) name: String,
    pub(crate) home: PathBuf,
    pub(crate) key: SshKey,
}

/// What a command printed, and whether it succeeded.
pub(crate) struct Ran {
    pub(crate) ok: bool,
    pub(crate) code: Option<i32>,
    pub(crate) out: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Ran {
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
}

impl Deis {
    /// A new user's client with a fresh key, registered and logged in on `setup`, key added.
    pub(crate) async fn register(setup: &impl Setup, name: &str) -> Deis {
        let home = setup.dir().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("home directory");
        let key = SshKey::generate(&home, name);
        let deis = Deis {
            name: name.to_owned(),
            home,
            key,
        };
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
        deis.ok(setup.dir(), &["keys:add", &path_str(&public)])
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
        self.command(cwd, args)
            .output()
            .await
            .expect("deis runs")
            .into()
    }

    /// Runs `deis`; when the controller it knows cannot be reached (it moved to another host:
    /// users find it again through `deis.<domain>`, and with no DNS in tests the client logs in
    /// at the leading controller's address), logs in there and runs it again.
    pub(crate) async fn run_following(&self, setup: &impl Setup, cwd: &Path, args: &[&str]) -> Ran {
        let ran = self.run(cwd, args).await;
        if ran.ok || !ran.out.contains("cannot be reached") {
            return ran;
        }
        let url = setup.controller_url();
        let user = format!("--username={}", self.name);
        let login = self
            .run(cwd, &["login", &url, &user, "--password=pw"])
            .await;
        if !login.ok {
            return login;
        }
        self.run(cwd, args).await
    }

    /// Runs `deis`, expecting success: what it printed.
    pub(crate) async fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let ran = self.run(cwd, args).await;
        assert!(ran.ok, "deis {args:?} failed: {}", ran.out);
        ran.out
    }

    /// `git push deis master` from `work` with this user's key, ready to run.
    pub(crate) fn push_command(&self, work: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        command
            .args(["push", "deis", "master"])
            .current_dir(work)
            .env("HOME", &self.home)
            .env("GIT_SSH_COMMAND", self.key.ssh_command())
            .kill_on_drop(true);
        command
    }

    /// `git push deis master` from `work` with this user's key.
    pub(crate) async fn push(&self, work: &Path) -> Ran {
        self.push_command(work)
            .output()
            .await
            .expect("git push runs")
            .into()
    }
}
