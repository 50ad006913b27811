//! Docker objects for one test: everything it creates carries the label `deis.test=<id>` and is
//! removed when the fixture is dropped (or by [`TestDocker::cleanup`]). Images cannot be pulled
//! here, so [`TestDocker::base_image`] imports a small busybox image built from the host's
//! `busybox-static`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::TryStreamExt;

use crate::{require, unique_id};

/// The label key every test object carries.
pub const TEST_LABEL: &str = deis_docker::labels::TEST;

/// A Docker engine connection scoped to one test.
pub struct TestDocker {
    docker: Docker,
    id: String,
}

impl TestDocker {
    /// Connects to the local engine. Panics with what to do when no engine answers.
    pub async fn connect() -> TestDocker {
        let hint = "start the Docker engine (apt-get install -y docker.io && dockerd &)";
        let docker = deis_docker::connect("")
            .await
            .unwrap_or_else(|e| panic!("{e}; {hint}"));
        TestDocker {
            docker,
            id: unique_id(),
        }
    }

    /// The engine client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// This test's id: the value of the `deis.test` label.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The labels to put on every object this test creates.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(TEST_LABEL.to_owned(), self.id.clone())])
    }

    /// Imports a busybox image (`/bin/busybox` and a link per applet in `/bin`, `CMD ["sh"]`)
    /// labelled for this test, and returns its reference.
    pub async fn base_image(&self) -> String {
        let busybox = require("busybox", "busybox-static");
        self.import("base", busybox_tar(&busybox, &[])).await
    }

    /// The busybox image of [`TestDocker::base_image`] plus this host's `/bin/bash` and the
    /// libraries it links: an image whose users can write bash syntax.
    pub async fn bash_image(&self) -> String {
        let busybox = require("busybox", "busybox-static");
        let bash = require("bash", "bash");
        let mut files = vec![(bash.clone(), "bin/bash".to_owned())];
        files.extend(linked_libraries(&bash));
        self.import("bash", busybox_tar(&busybox, &files)).await
    }

    /// The busybox image of [`TestDocker::base_image`] plus this host's `git` (as `/bin/git`)
    /// and the libraries it links: a buildpack stack that can clone a `git://` buildpack.
    pub async fn git_image(&self) -> String {
        let busybox = require("busybox", "busybox-static");
        let git = require("git", "git");
        let mut files = vec![(git.clone(), "bin/git".to_owned())];
        files.extend(linked_libraries(&git));
        self.import("git", busybox_tar(&busybox, &files)).await
    }

    /// Imports `tarball` as `deis-test-<kind>-<id>:latest`, labelled for this test.
    async fn import(&self, kind: &str, tarball: Vec<u8>) -> String {
        let repo = format!("deis-test-{kind}-{}", self.id);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(&repo)
            .tag("latest")
            .changes(vec![
                format!("LABEL {TEST_LABEL}={}", self.id),
                "CMD [\"/bin/sh\"]".to_owned(),
                "ENV PATH=/bin".to_owned(),
            ])
            .build();
        self.docker
            .create_image(
                Some(options),
                Some(bollard::body_full(tarball.into())),
                None,
            )
            .try_collect::<Vec<_>>()
            .await
            .unwrap_or_else(|e| panic!("importing the {kind} image failed: {e}"));
        format!("{repo}:latest")
    }

    /// Makes the engine a single-node swarm manager on loopback if it is not one already (the
    /// swarm is left in place for other tests; their services are labelled and removed).
    pub async fn ensure_swarm(&self) {
        if self.docker.inspect_swarm().await.is_ok() {
            return;
        }
        let request = bollard::models::SwarmInitRequest {
            listen_addr: Some("127.0.0.1:2377".into()),
            advertise_addr: Some("127.0.0.1".into()),
            ..Default::default()
        };
        if let Err(e) = self.docker.init_swarm(request).await {
            // Another test may have initialised it meanwhile.
            if self.docker.inspect_swarm().await.is_err() {
                panic!("cannot make the engine a swarm manager: {e}");
            }
        }
    }

    /// Removes every service, container, image and network labelled for this test.
    pub async fn cleanup(&self) {
        remove_labelled(&self.docker, &self.id).await;
    }
}

/// The shared libraries `binary` loads (as `ldd` lists them), each with its path in an image.
fn linked_libraries(binary: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ldd (apt-get install -y libc-bin): {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = line.split_whitespace().find(|word| word.starts_with('/'))?;
            Some((path.into(), path.trim_start_matches('/').to_owned()))
        })
        .collect()
}

/// Busybox with a link per applet in `/bin`, `/tmp`, `/etc` and `/root`, and `files` (host
/// path, path in the image), which win over applets of the same name.
fn busybox_tar(busybox: &std::path::Path, files: &[(std::path::PathBuf, String)]) -> Vec<u8> {
    let applets = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("cannot run busybox --list: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_path_with_name(busybox, "bin/busybox")
        .unwrap_or_else(|e| panic!("cannot add busybox to the image: {e}"));
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        let path = format!("bin/{applet}");
        if applet.is_empty()
            || applet == "busybox"
            || applet.contains('/')
            || files.iter().any(|(_, p)| *p == path)
        {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder
            .append_link(&mut header, path, "busybox")
            .unwrap_or_else(|e| panic!("cannot add the {applet} link: {e}"));
    }
    for dir in ["tmp", "etc", "root"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o1777);
        builder
            .append_data(&mut header, dir, std::io::empty())
            .unwrap_or_else(|e| panic!("cannot add /{dir}: {e}"));
    }
    for (host, path) in files {
        builder
            .append_path_with_name(host, path)
            .unwrap_or_else(|e| panic!("cannot add {} to the image: {e}", host.display()));
    }
    builder
        .into_inner()
        .unwrap_or_else(|e| panic!("cannot finish the image tarball: {e}"))
}

async fn remove_labelled(docker: &Docker, id: &str) {
    let label = format!("{TEST_LABEL}={id}");
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    if let Ok(services) = docker
        .list_services(Some(
            bollard::query_parameters::ListServicesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
    {
        for service in services {
            if let Some(id) = service.id {
                let _ = docker.delete_service(&id).await;
            }
        }
    }
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap_or_default();
    for c in containers {
        if let Some(cid) = c.id {
            let _ = deis_docker::remove_container(docker, &cid).await;
        }
    }
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .unwrap_or_default();
    for n in networks {
        if let Some(nid) = n.id {
            let _ = docker.remove_network(&nid).await;
        }
    }
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap_or_default();
    for image in images {
        let _ = docker
            .remove_image(
                &image.id,
                Some(RemoveImageOptionsBuilder::new().force(true).build()),
                None,
            )
            .await;
    }
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .ok()
        .and_then(|v| v.volumes)
        .unwrap_or_default();
    for volume in volumes {
        let _ = docker
            .remove_volume(
                &volume.name,
                Some(
                    bollard::query_parameters::RemoveVolumeOptionsBuilder::new()
                        .force(true)
                        .build(),
                ),
            )
            .await;
    }
}

impl Drop for TestDocker {
    fn drop(&mut self) {
        // Drop cannot await; clean up on a thread with its own runtime so this works inside and
        // outside of an async test.
        let docker = self.docker.clone();
        let id = self.id.clone();
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(remove_labelled(&docker, &id));
            }
        });
        let _ = cleanup.join();
    }
}
