//! Images an engine does not have are pulled before a container is made of them: with the
//! app's pull credential (`deis_runtime::pull_credential`) when the image is in the platform's
//! registry (the registry proxy published at `/deis/registry/{host,port}`, or one of
//! `DockerConfig::registries`), anonymously from any other registry. The registry proxy lets
//! an app's credential pull that app's repository only.

use std::sync::Arc;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use deis_runtime::Endpoint;
use deis_store::ConfigStore;
use deis_store::keys::Component;
use deis_types::AppName;
use futures_util::StreamExt;

use crate::container_spec::{ImageFacts, image_facts};
use crate::spec::{Progress, SchedulerError};

/// What pulls need: where the platform's registry is, and the store its credentials come from.
#[derive(Clone)]
pub(crate) struct Pulls {
    store: Arc<dyn ConfigStore>,
    /// Registries (`host:port`) besides the published one that take the platform's credentials.
    registries: Vec<String>,
    /// Where pulls are told to the app's user (shared by every clone).
    progress: Arc<std::sync::OnceLock<Progress>>,
}

impl Pulls {
    pub(crate) fn new(store: Arc<dyn ConfigStore>, registries: Vec<String>) -> Pulls {
        Pulls {
            store,
            registries,
            progress: Arc::default(),
        }
    }

    /// Tells pulls to `progress` from now on (the first call wins).
    pub(crate) fn report_to(&self, progress: Progress) {
        let _ = self.progress.set(progress);
    }

    fn say(&self, app: &AppName, line: &str) {
        if let Some(progress) = self.progress.get() {
            progress.say(app, line);
        }
    }

    /// What the scheduler reads from `image` on `docker`, pulled there first for `app` when
    /// the engine does not have it.
    pub(crate) async fn image_facts(
        &self,
        docker: &Docker,
        app: &AppName,
        image: &str,
    ) -> Result<ImageFacts, SchedulerError> {
        match image_facts(docker, image).await {
            Err(SchedulerError::Docker(e)) if e.status() == Some(404) => {
                self.pull(docker, app, image).await?;
                image_facts(docker, image).await
            }
            known => known,
        }
    }

    /// Pulls `image` onto `docker` with `app`'s credentials for its registry.
    async fn pull(
        &self,
        docker: &Docker,
        app: &AppName,
        image: &str,
    ) -> Result<(), SchedulerError> {
        let credentials = self.credentials(app, image).await?;
        let (repository, tag) = deis_docker::split_reference(image);
        self.say(
            app,
            &format!("pulling {image} onto a host that does not have it"),
        );
        tracing::info!(%image, credentials = credentials.is_some(), "Pulling an image the engine does not have");
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut progress = docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            let failed = |source| SchedulerError::Pull {
                image: image.to_owned(),
                source,
            };
            let info = match item {
                Ok(info) => info,
                Err(source) => {
                    self.say(app, &format!("pulling {image} failed"));
                    return Err(failed(source));
                }
            };
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                self.say(app, &format!("pulling {image} failed: {error}"));
                return Err(failed(bollard::errors::Error::DockerStreamError { error }));
            }
        }
        self.say(app, &format!("pulled {image}"));
        Ok(())
    }

    /// The credentials `app` presents to `image`'s registry: its pull credential when that is
    /// the platform's registry, none for any other.
    pub(crate) async fn credentials(
        &self,
        app: &AppName,
        image: &str,
    ) -> Result<Option<DockerCredentials>, SchedulerError> {
        let Some(registry) = deis_docker::registry_of(image) else {
            return Ok(None);
        };
        let published = Endpoint::find(self.store.as_ref(), Component::Registry)
            .await
            .map_err(SchedulerError::RegistryLookup)?;
        let platforms = self.registries.iter().any(|r| same_registry(r, registry))
            || published.is_some_and(|e| same_registry(&host_port(&e), registry));
        if !platforms {
            return Ok(None);
        }
        let credential = deis_runtime::pull_credential(self.store.as_ref(), app)
            .await
            .map_err(|source| SchedulerError::Credential {
                image: image.to_owned(),
                source,
            })?;
        Ok(Some(deis_docker::registry_credentials(
            credential.username(),
            credential.password(),
            registry,
        )))
    }
}

/// `host:port` as image references write it.
fn host_port(endpoint: &Endpoint) -> String {
    if endpoint.host.contains(':') {
        format!("[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    }
}

/// Whether two registries (`host[:port]`) are the same one: the same host and port, where every
/// loopback name (`localhost`, `127.x.y.z`, `[::1]`) is this host.
fn same_registry(a: &str, b: &str) -> bool {
    let split = |r: &str| -> (String, String) {
        let r = r.to_ascii_lowercase();
        match r.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host.to_owned(), port.to_owned()),
            _ => (r, String::new()),
        }
    };
    let loopback = |host: &str| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let ((host_a, port_a), (host_b, port_b)) = (split(a), split(b));
    port_a == port_b && (host_a == host_b || (loopback(&host_a) && loopback(&host_b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_is_the_same_by_host_and_port_with_loopback_names_alike() {
        for (a, b, same) in [
            ("127.0.0.1:5000", "127.0.0.1:5000", true),
            ("127.0.0.1:5000", "localhost:5000", true),
            ("[::1]:5000", "127.0.0.1:5000", true),
            (
                "Registry.Example.com:5000",
                "registry.example.com:5000",
                true,
            ),
            ("127.0.0.1:5000", "127.0.0.1:5001", false),
            ("10.0.0.5:5000", "127.0.0.1:5000", false),
            ("registry.example.com", "registry.example.com:443", false),
            ("registry.example.com", "registry.example.com", true),
        ] {
            assert_eq!(same_registry(a, b), same, "{a} {b}");
        }
    }

    #[tokio::test]
    async fn the_platforms_registry_gets_the_apps_credential_others_none() {
        let store: Arc<dyn ConfigStore> = Arc::new(deis_store::MemoryStore::new());
        for (key, value) in [
            (
                deis_store::keys::Key::host(Component::Registry),
                "127.0.0.1",
            ),
            (deis_store::keys::Key::port(Component::Registry), "5000"),
        ] {
            store.put(&key.path(), value, None).await.expect("put");
        }
        let pulls = Pulls::new(store, vec!["10.0.0.5:5000".to_owned()]);
        let app: AppName = "shop".parse().expect("name");
        for (image, expect) in [
            ("127.0.0.1:5000/shop:git-1234567", Some("127.0.0.1:5000")),
            ("localhost:5000/shop:git-1234567", Some("localhost:5000")),
            ("10.0.0.5:5000/shop:git-1234567", Some("10.0.0.5:5000")),
            ("127.0.0.1:5001/shop:git-1234567", None),
            ("registry.example.com/shop:1", None),
            ("busybox:latest", None),
        ] {
            let credentials = pulls.credentials(&app, image).await.expect("credentials");
            assert_eq!(
                credentials
                    .as_ref()
                    .and_then(|c| c.serveraddress.as_deref()),
                expect,
                "{image}"
            );
            if let Some(c) = credentials {
                assert_eq!(c.username.as_deref(), Some("shop"));
            }
        }
    }
}
