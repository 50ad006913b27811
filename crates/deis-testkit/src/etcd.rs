//! etcd from Debian's `etcd-server`: one member, or a three-member cluster whose members can be
//! killed and restarted with their data. One member can also serve its client port over TLS
//! with client-certificate authentication ([`Etcd::start_tls`]), with certificates from a
//! [`TestCa`] made with rcgen: the CA, a server certificate for `127.0.0.1`/`localhost`, and
//! client certificates on demand, as PEM files ([`Etcd::start_tls_with`] takes certificates the
//! caller made instead). Peer URLs stay plain HTTP on loopback, and `/health` is asked on a
//! plain metrics port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::{ServiceProcess, eventually, free_port, http_get, require};

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8).
    pub key_file: PathBuf,
}

/// A certificate authority for a test, with its files in a temporary directory removed on drop.
pub struct TestCa {
    dir: TempDir,
    ca_file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name` (its common name), its certificate written to `ca.pem`.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let key = generate_key();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("cannot sign the CA {name}: {e}"));
        let ca_file = dir.path().join("ca.pem");
        write(&ca_file, &cert.pem());
        TestCa {
            dir,
            ca_file,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A client certificate (extended key usage: client authentication) for `common_name`,
    /// signed by this CA, written to new files.
    pub fn client_cert(&self, common_name: &str) -> CertFiles {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&format!("client-{common_name}"), params)
    }

    /// A server certificate for `127.0.0.1`, `::1` and `localhost`, signed by this CA. It also
    /// allows client authentication: etcd's gRPC gateway connects to its own client port with
    /// the server certificate.
    pub fn server_cert(&self, name: &str) -> CertFiles {
        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("invalid server names: {e}"));
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(&format!("server-{name}"), params)
    }

    fn issue(&self, stem: &str, params: CertificateParams) -> CertFiles {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let key = generate_key();
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("cannot sign the certificate {stem}: {e}"));
        let stem: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let files = CertFiles {
            cert_file: self.dir.path().join(format!("{stem}-{n}.pem")),
            key_file: self.dir.path().join(format!("{stem}-{n}-key.pem")),
        };
        write(&files.cert_file, &cert.pem());
        write(&files.key_file, &key.serialize_pem());
        files
    }
}

fn generate_key() -> KeyPair {
    KeyPair::generate().unwrap_or_else(|e| panic!("cannot generate a key pair: {e}"))
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` and `/metrics`, for a member whose client port speaks TLS.
    metrics_port: u16,
    data_dir: PathBuf,
    process: Option<ServiceProcess>,
}

/// The TLS set-up of a cluster: the CA it trusts (ours, or only its file when the caller made
/// it) and the members' server certificate.
struct ClusterTls {
    ca: Option<TestCa>,
    ca_file: PathBuf,
    server: CertFiles,
}

/// A three-member etcd cluster (or one member) on loopback ports.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    tls: Option<ClusterTls>,
    dir: TempDir,
}

/// A single etcd member.
pub struct Etcd {
    cluster: EtcdCluster,
}

impl Etcd {
    /// Starts one member and waits until it is healthy.
    pub async fn start() -> Etcd {
        Etcd {
            cluster: EtcdCluster::start_members(1, None).await,
        }
    }

    /// Starts one member whose client port speaks TLS only and requires a client certificate
    /// signed by [`Etcd::ca`] (`--client-cert-auth`), and waits until it is healthy.
    pub async fn start_tls() -> Etcd {
        let ca = TestCa::new(&format!("etcd test CA {}", crate::unique_id()));
        let server = ca.server_cert("etcd");
        let tls = ClusterTls {
            ca_file: ca.ca_file().to_owned(),
            ca: Some(ca),
            server,
        };
        Etcd {
            cluster: EtcdCluster::start_members(1, Some(tls)).await,
        }
    }

    /// Starts one member like [`Etcd::start_tls`], with certificates the caller made: it
    /// trusts the CA in `ca_file` for clients and presents `server` (which must name
    /// `127.0.0.1`). [`Etcd::ca`] and [`Etcd::client_cert`] are not available then.
    pub async fn start_tls_with(ca_file: &Path, server: &CertFiles) -> Etcd {
        let tls = ClusterTls {
            ca: None,
            ca_file: ca_file.to_owned(),
            server: server.clone(),
        };
        Etcd {
            cluster: EtcdCluster::start_members(1, Some(tls)).await,
        }
    }

    /// Its client URL (`https://` for [`Etcd::start_tls`]).
    pub fn endpoint(&self) -> String {
        self.cluster.endpoint(0)
    }

    /// The CA that signed the server's certificate and that the server trusts for clients.
    /// Panics unless started with [`Etcd::start_tls`].
    pub fn ca(&self) -> &TestCa {
        match &self.cluster.tls {
            Some(ClusterTls { ca: Some(ca), .. }) => ca,
            Some(_) => panic!("this etcd was given its certificates; its CA is the caller's"),
            None => panic!("this etcd does not use TLS; start it with Etcd::start_tls"),
        }
    }

    /// The CA certificate to verify the server with. Panics unless started with TLS.
    pub fn ca_file(&self) -> PathBuf {
        match &self.cluster.tls {
            Some(tls) => tls.ca_file.clone(),
            None => panic!("this etcd does not use TLS; start it with Etcd::start_tls"),
        }
    }

    /// A new client certificate etcd accepts, for `common_name`. Panics unless started with
    /// [`Etcd::start_tls`].
    pub fn client_cert(&self, common_name: &str) -> CertFiles {
        self.ca().client_cert(common_name)
    }
}

impl EtcdCluster {
    /// Starts three members and waits until each is healthy.
    pub async fn start() -> EtcdCluster {
        Self::start_members(3, None).await
    }

    async fn start_members(n: usize, tls: Option<ClusterTls>) -> EtcdCluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let token = crate::unique_id();
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                metrics_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token,
            tls,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i).await;
        }
        cluster
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn spawn(&mut self, i: usize) {
        let etcd = require("etcd", "etcd-server");
        let log = self.dir.path().join(format!("m{i}.log"));
        let m = &self.members[i];
        let client = format!("{}://127.0.0.1:{}", self.scheme(), m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let mut cmd = Command::new(etcd);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "warn", "--logger", "zap"]);
        if let Some(tls) = &self.tls {
            cmd.arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&tls.ca_file)
                .arg("--cert-file")
                .arg(&tls.server.cert_file)
                .arg("--key-file")
                .arg(&tls.server.key_file)
                .arg("--listen-metrics-urls")
                .arg(format!("http://127.0.0.1:{}", m.metrics_port));
        }
        let process = ServiceProcess::spawn(&format!("etcd {}", m.name), cmd, &log);
        self.members[i].process = Some(process);
    }

    async fn wait_healthy(&mut self, i: usize) {
        // With TLS on the client port, /health is asked on the plain metrics port.
        let port = if self.tls.is_some() {
            self.members[i].metrics_port
        } else {
            self.members[i].client_port
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let name = self.members[i].name.clone();
        let process = self.members[i].process.as_mut();
        if let Some(p) = process {
            p.assert_running();
        }
        eventually(
            Duration::from_secs(30),
            &format!("etcd {name} to be healthy"),
            || async move {
                match http_get(addr, "/health") {
                    Ok((200, body)) if body.contains("true") => Ok(()),
                    Ok((status, body)) => Err(format!("{status} {body}")),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[i].client_port
        )
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Kills member `i` with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            p.kill();
        }
    }

    /// Starts member `i` again on its data and waits until it is healthy.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd with TLS answers health on its metrics port and names its files; the plain client
    /// port is not plain HTTP any more.
    #[tokio::test]
    async fn a_tls_etcd_is_healthy_and_refuses_plain_http_on_its_client_port() {
        let etcd = Etcd::start_tls().await;
        assert!(etcd.endpoint().starts_with("https://127.0.0.1:"));
        let client = etcd.client_cert("controller");
        for file in [
            etcd.ca_file(),
            client.cert_file.clone(),
            client.key_file.clone(),
        ] {
            let text = std::fs::read_to_string(&file).expect("the PEM file exists");
            assert!(text.contains("-----BEGIN "), "{}: {text}", file.display());
        }
        assert_ne!(
            client,
            etcd.client_cert("controller"),
            "each call makes new files"
        );
        let port: u16 = etcd
            .endpoint()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let plain = http_get(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            "/health",
        );
        assert!(
            !matches!(plain, Ok((200, _))),
            "plain HTTP must not be served: {plain:?}"
        );
    }
}
