//! etcd's certificates on a Swarm. deisctl makes a CA for the cluster and keeps it on the
//! operator's machine (`~/.deis/<prefix>/etcd/`, with deisctl's own client certificate); each
//! member gets a server certificate for its host's address, each component a client
//! certificate of its own, handed over as Swarm secrets (`/run/secrets/<name>` in its tasks),
//! so that nothing without one reaches etcd.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use base64::Engine as _;
use bollard::Docker;
use bollard::models::SecretSpec;
use bollard::query_parameters::ListSecretsOptionsBuilder;
use deis_store::EtcdTls;

use super::nodes::Node;
use super::services::{SecretRef, secret_path};
use crate::Error;
use crate::pki::Pki;
use crate::platform::component::{Component, LABEL_PLATFORM};

/// Where the operator's copy of the CA and deisctl's client certificate are.
pub(crate) fn dir(prefix: &str) -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".deis").join(prefix).join("etcd")
}

/// deisctl's own client certificate for the cluster's etcd.
pub(crate) fn operator_files(prefix: &str) -> Result<EtcdTls, Error> {
    let dir = dir(prefix);
    let files = EtcdTls {
        ca_file: Some(dir.join("ca.pem")),
        cert_file: Some(dir.join("deisctl.pem")),
        key_file: Some(dir.join("deisctl-key.pem")),
    };
    for file in [&files.ca_file, &files.cert_file, &files.key_file]
        .into_iter()
        .flatten()
    {
        if !file.exists() {
            return Err(Error::Message(format!(
                "{} is missing: etcd's certificates for this cluster are made by deisctl install platform on the machine that ran it; copy {} from there",
                file.display(),
                dir.display()
            )));
        }
    }
    Ok(files)
}

fn secret_name(prefix: &str, what: &str) -> String {
    format!("{prefix}-{what}")
}

/// The platform's secrets: name → id.
async fn secrets(docker: &Docker, prefix: &str) -> Result<HashMap<String, String>, Error> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![deis_docker::labels::filter(LABEL_PLATFORM, prefix)],
    )]);
    let listed = docker
        .list_secrets(Some(
            ListSecretsOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|e| Error::Message(format!("cannot list the Swarm's secrets: {e}")))?;
    Ok(listed
        .into_iter()
        .filter_map(|s| Some((s.spec?.name?, s.id?)))
        .collect())
}

async fn create_secret(
    docker: &Docker,
    prefix: &str,
    name: &str,
    pem: &str,
) -> Result<SecretRef, Error> {
    let spec = SecretSpec {
        name: Some(name.to_owned()),
        labels: Some(HashMap::from([(
            LABEL_PLATFORM.to_owned(),
            prefix.to_owned(),
        )])),
        data: Some(base64::engine::general_purpose::STANDARD.encode(pem)),
        ..Default::default()
    };
    let id = docker
        .create_secret(spec)
        .await
        .map_err(|e| Error::Message(format!("cannot create the secret {name}: {e}")))?
        .id;
    Ok(SecretRef {
        id,
        name: name.to_owned(),
    })
}

fn write_private(path: &std::path::Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed =
        |e: std::io::Error| Error::Message(format!("cannot write {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)
}

/// The cluster's CA: the operator's copy, or a new one (with deisctl's client certificate)
/// when the Swarm has none yet.
async fn authority(docker: &Docker, prefix: &str) -> Result<(Pki, SecretRef), Error> {
    let dir = dir(prefix);
    let (ca_file, key_file) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let existing = secrets(docker, prefix).await?;
    let ca_name = secret_name(prefix, "etcd-ca.pem");
    if ca_file.exists() && key_file.exists() {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p)
                .map_err(|e| Error::Message(format!("cannot read {}: {e}", p.display())))
        };
        let pki = Pki::from_pem(&read(&ca_file)?, &read(&key_file)?).map_err(|e| {
            Error::Message(format!("{} is not a usable CA: {e}", ca_file.display()))
        })?;
        let secret = match existing.get(&ca_name) {
            Some(id) => SecretRef {
                id: id.clone(),
                name: ca_name,
            },
            None => create_secret(docker, prefix, &ca_name, pki.ca_pem()).await?,
        };
        return Ok((pki, secret));
    }
    if existing.contains_key(&ca_name) {
        return Err(Error::Message(format!(
            "this cluster's etcd CA is not in {}; copy that folder from the machine that installed the platform",
            dir.display()
        )));
    }
    let pki =
        Pki::generate(prefix).map_err(|e| Error::Message(format!("cannot make a CA: {e}")))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", dir.display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    write_private(&ca_file, pki.ca_pem())?;
    write_private(&key_file, pki.ca_key_pem())?;
    let (cert, key) = pki
        .client_cert("deisctl")
        .map_err(|e| Error::Message(format!("cannot make deisctl's certificate: {e}")))?;
    write_private(&dir.join("deisctl.pem"), &cert)?;
    write_private(&dir.join("deisctl-key.pem"), &key)?;
    let secret = create_secret(docker, prefix, &ca_name, pki.ca_pem()).await?;
    println!("etcd's certificates: {}", dir.display());
    Ok((pki, secret))
}

/// A secret, made by `make` unless the Swarm has it.
async fn ensure(
    docker: &Docker,
    prefix: &str,
    existing: &HashMap<String, String>,
    name: String,
    make: impl FnOnce() -> Result<String, Error>,
) -> Result<SecretRef, Error> {
    match existing.get(&name) {
        Some(id) => Ok(SecretRef {
            id: id.clone(),
            name,
        }),
        None => create_secret(docker, prefix, &name, &make()?).await,
    }
}

/// For each member (in `hosts`' order): the CA, its certificate and its key.
pub(super) async fn ensure_members(
    docker: &Docker,
    prefix: &str,
    hosts: &[Node],
) -> Result<Vec<Vec<SecretRef>>, Error> {
    let (pki, ca) = authority(docker, prefix).await?;
    let existing = secrets(docker, prefix).await?;
    let mut all = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        all.push(member_secrets(docker, prefix, (&pki, &ca), &existing, i + 1, host).await?);
    }
    Ok(all)
}

/// Member `k`'s CA, certificate and key for its host `host` (a member moved to another host
/// gets a certificate of its own there: secrets cannot change).
pub(super) async fn ensure_member(
    docker: &Docker,
    prefix: &str,
    k: usize,
    host: &Node,
) -> Result<Vec<SecretRef>, Error> {
    let (pki, ca) = authority(docker, prefix).await?;
    let existing = secrets(docker, prefix).await?;
    member_secrets(docker, prefix, (&pki, &ca), &existing, k, host).await
}

/// Member `k`'s secrets for `host`, made with the CA unless the Swarm has them.
async fn member_secrets(
    docker: &Docker,
    prefix: &str,
    (pki, ca): (&Pki, &SecretRef),
    existing: &HashMap<String, String>,
    k: usize,
    host: &Node,
) -> Result<Vec<SecretRef>, Error> {
    let ip: IpAddr = host
        .addr
        .parse()
        .map_err(|_| Error::Message(format!("{} is not an IP address", host.addr)))?;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let (cert, key) = pki
        .server_cert(
            &format!("{prefix}-{k}"),
            &[ip, loopback],
            &[&host.hostname, "localhost"],
        )
        .map_err(|e| Error::Message(format!("cannot make etcd's certificate: {e}")))?;
    let cert = ensure(
        docker,
        prefix,
        existing,
        secret_name(prefix, &format!("etcd-{k}-{ip}.pem")),
        || Ok(cert),
    )
    .await?;
    let key = ensure(
        docker,
        prefix,
        existing,
        secret_name(prefix, &format!("etcd-{k}-{ip}-key.pem")),
        || Ok(key),
    )
    .await?;
    Ok(vec![ca.clone(), cert, key])
}

/// A component's CA, client certificate and key.
pub(super) async fn ensure_client(
    docker: &Docker,
    prefix: &str,
    component: Component,
) -> Result<Vec<SecretRef>, Error> {
    let (pki, ca) = authority(docker, prefix).await?;
    let existing = secrets(docker, prefix).await?;
    let name = component.name();
    let made = pki
        .client_cert(name)
        .map_err(|e| Error::Message(format!("cannot make the {name} certificate: {e}")))?;
    let (cert_pem, key_pem) = made;
    let cert = ensure(
        docker,
        prefix,
        &existing,
        secret_name(prefix, &format!("{name}-etcd.pem")),
        || Ok(cert_pem),
    )
    .await?;
    let key = ensure(
        docker,
        prefix,
        &existing,
        secret_name(prefix, &format!("{name}-etcd-key.pem")),
        || Ok(key_pem),
    )
    .await?;
    Ok(vec![ca, cert, key])
}

/// The variables that point a component at its certificate (`[ca, cert, key]`).
pub(super) fn tls_env(secrets: &[SecretRef]) -> Vec<String> {
    [
        "DEIS_ETCD_CA_FILE",
        "DEIS_ETCD_CERT_FILE",
        "DEIS_ETCD_KEY_FILE",
    ]
    .iter()
    .zip(secrets)
    .map(|(var, s)| format!("{var}={}", secret_path(&s.name)))
    .collect()
}

/// Removes the platform's secrets and the operator's copy of the CA.
pub(super) async fn remove_all(docker: &Docker, prefix: &str) -> Result<(), Error> {
    for (name, id) in secrets(docker, prefix).await? {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        // A secret stays in use until the last task holding it is gone.
        while let Err(e) = docker.delete_secret(&id).await {
            if std::time::Instant::now() > deadline {
                return Err(Error::Message(format!(
                    "cannot remove the secret {name}: {e}"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    let dir = dir(prefix);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::Message(format!("cannot remove {}: {e}", dir.display())))?;
        println!("{}: removed", dir.display());
    }
    Ok(())
}
