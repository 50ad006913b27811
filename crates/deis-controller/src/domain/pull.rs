//! `deis pull` (§9.2): where the image a build names comes from, and how it gets onto the
//! platform before anything is recorded.
//!
//! - The platform has a registry (the registry proxy publishes `/deis/registry/{host,port}`):
//!   the controller's engine pulls the image from its registry anonymously, tags it
//!   `<registry>/<app>:pull-<image id>` and pushes it through the proxy with the builder's
//!   credential; the build records that reference, which every host pulls through its proxy
//!   with the app's credential. An image already in the platform's registry is used as it is,
//!   from the app's own repository only (the app's credential pulls nothing else).
//! - No registry: the engine's image is used, pulled first when the engine lacks it (not at all
//!   when the scheduler runs no containers).
//!
//! A reference naming a registry is always pulled for a copy (its tag may have moved); a bare
//! name is the engine's own image when it has one (built on this host), else Docker Hub's.
//! The whole of it is bounded by `pull_timeout`; its progress is a few app events (pulling,
//! pushed, or why not). Builds from the builder (with a `sha`) are not copied: the builder puts
//! its images where they run.

use std::time::Duration;

use deis_docker::DockerError;
use deis_runtime::Endpoint;
use deis_store::keys::Component;
use deis_types::Code;
use tokio::time::Instant;

use super::release::event;
use crate::state::AppState;

/// Where an image without a registry in its name comes from.
const DOCKER_HUB: &str = "docker.io";

/// Why the image of a `deis pull` is not on the platform; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PullError {
    /// An image in the platform's registry outside the app's own repository.
    #[error(
        "{image} is in the repository {repository} of the platform's registry; the app {app} runs images of {registry}/{app} only"
    )]
    OtherRepository {
        image: String,
        repository: String,
        registry: String,
        app: String,
    },
    /// A registry answered that it has no such image, refused it, or could not be reached.
    #[error("image {image} cannot be {way} {registry}: {reason}")]
    Registry {
        image: String,
        way: Way,
        registry: String,
        reason: String,
        #[source]
        source: Box<DockerError>,
    },
    /// A step did not finish within the operator's `pull_timeout`.
    #[error("image {image} was not {step} within {} seconds", limit.as_secs())]
    TimedOut {
        image: String,
        step: String,
        limit: Duration,
    },
    /// The image went from the engine right after it was pulled.
    #[error("image {image} was pulled but the engine no longer has it; try again")]
    Gone { image: String },
    /// Whether the platform has a registry cannot be read from the store.
    #[error("the platform's registry cannot be looked up: {source}")]
    Lookup {
        #[source]
        source: deis_store::StoreError,
    },
    /// The builder's registry credential cannot be read from the store.
    #[error("the platform registry's credential cannot be read: {source}")]
    Credential {
        #[source]
        source: deis_runtime::SecretError,
    },
    /// The engine itself failed (unreachable, or a tag or an inspection failed).
    #[error("{source}")]
    Engine {
        image: String,
        #[source]
        source: Box<DockerError>,
    },
}

impl PullError {
    pub(crate) fn code(&self) -> Code {
        match self {
            PullError::OtherRepository { .. } => Code::PermissionDenied,
            // The image's registry said no: the request names what it cannot have.
            PullError::Registry { way: Way::From, .. } => Code::InvalidArgument,
            // The platform's registry said no: the platform is at fault.
            PullError::Registry { way: Way::To, .. }
            | PullError::Gone { .. }
            | PullError::Lookup { .. }
            | PullError::Credential { .. } => Code::Unavailable,
            PullError::TimedOut { .. } => Code::DeadlineExceeded,
            PullError::Engine { source, .. } if source.is_retryable() => Code::Unavailable,
            PullError::Engine { .. } => Code::Internal,
        }
    }
}

/// The image a build of `app` records for `image` (as the user named it): the platform's copy
/// when the platform has a registry, else `image` once the engine has it.
#[tracing::instrument(name = "pull", skip_all, fields(app = %app, image = %image))]
pub(crate) async fn resolve(state: &AppState, app: &str, image: &str) -> Result<String, PullError> {
    let pull = Pull {
        state,
        app,
        image,
        deadline: Instant::now() + state.images.timeout,
    };
    let resolved = match platform_registry(state).await? {
        Some(registry) if deis_docker::registry_of(image) == Some(registry.as_str()) => {
            return own_repository(image, &registry, app).map(|()| image.to_owned());
        }
        Some(registry) => pull.copy(&registry).await,
        None if state.images.runs_containers => pull.fetch(false).await.map(|_| image.to_owned()),
        None => return Ok(image.to_owned()),
    };
    if let Err(e) = &resolved {
        tracing::warn!(error = %e, "Image not pulled");
        if e.code() != Code::Internal {
            event(state, app, &e.to_string());
        }
    }
    resolved
}

/// Which way an image went between the engine and a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// Pulled from the image's registry.
    From,
    /// Pushed to the platform's.
    To,
}

impl std::fmt::Display for Way {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Way::From => "pulled from",
            Way::To => "pushed to the platform's registry",
        })
    }
}

/// `host:port` of the platform's registry, if it has one.
async fn platform_registry(state: &AppState) -> Result<Option<String>, PullError> {
    let found = Endpoint::find(state.mirror.store().as_ref(), Component::Registry)
        .await
        .map_err(|source| PullError::Lookup { source })?;
    Ok(found.map(|Endpoint { host, port }| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }))
}

/// Refuses an image of the platform's `registry` outside `app`'s repository.
fn own_repository(image: &str, registry: &str, app: &str) -> Result<(), PullError> {
    let (name, _) = deis_docker::split_reference(image);
    let repository = name
        .strip_prefix(registry)
        .unwrap_or(name)
        .trim_start_matches('/');
    if repository == app {
        return Ok(());
    }
    Err(PullError::OtherRepository {
        image: image.to_owned(),
        repository: repository.to_owned(),
        registry: registry.to_owned(),
        app: app.to_owned(),
    })
}

/// The registry's reason in the engine's message about a pull or a push: its last clause
/// (`manifest unknown`, `connection refused`), from the name look-up on when a name did not
/// resolve.
fn reason(message: &str) -> &str {
    let message = message.trim();
    let last = message.rsplit(": ").next().unwrap_or(message);
    let before = message[..message.len() - last.len()].trim_end_matches(": ");
    match before.rsplit(": ").next() {
        Some(lookup) if lookup.starts_with("lookup ") => &message[before.len() - lookup.len()..],
        _ => last,
    }
}

/// What the registry said through the engine, if the engine answered (else the engine itself
/// failed).
fn registry_said(e: &DockerError) -> Option<String> {
    match e {
        DockerError::Call {
            source:
                source @ (bollard::errors::Error::DockerResponseServerError { .. }
                | bollard::errors::Error::DockerStreamError { .. }),
            ..
        } => Some(reason(&deis_docker::engine_message(source)).to_owned()),
        _ => None,
    }
}

/// One `deis pull` of `image` for `app`, finished by `deadline`.
struct Pull<'a> {
    state: &'a AppState,
    app: &'a str,
    image: &'a str,
    deadline: Instant,
}

impl Pull<'_> {
    /// `work`, or [`PullError::TimedOut`] (saying it was not `step`) at the deadline.
    async fn within<T>(
        &self,
        step: &str,
        work: impl Future<Output = Result<T, DockerError>>,
    ) -> Result<Result<T, DockerError>, PullError> {
        tokio::time::timeout_at(self.deadline, work)
            .await
            .map_err(|_| PullError::TimedOut {
                image: self.image.to_owned(),
                step: step.to_owned(),
                limit: self.state.images.timeout,
            })
    }

    /// An engine call of the engine's own (an inspection, a tag) within the deadline.
    async fn call<T>(
        &self,
        step: &str,
        work: impl Future<Output = Result<T, DockerError>>,
    ) -> Result<T, PullError> {
        self.within(step, work)
            .await?
            .map_err(|source| PullError::Engine {
                image: self.image.to_owned(),
                source: Box::new(source),
            })
    }

    /// A pull from or a push to `registry` within the deadline: what the registry said when
    /// the engine relayed it, else the engine's failure.
    async fn transfer(
        &self,
        way: Way,
        registry: &str,
        work: impl Future<Output = Result<(), DockerError>>,
    ) -> Result<(), PullError> {
        let step = format!("{way} {registry}");
        let Err(source) = self.within(&step, work).await? else {
            return Ok(());
        };
        let image = self.image.to_owned();
        let source = Box::new(source);
        Err(match registry_said(&source) {
            Some(reason) => PullError::Registry {
                image,
                way,
                registry: registry.to_owned(),
                reason,
                source,
            },
            None => PullError::Engine { image, source },
        })
    }

    /// The engine's ID of the image, pulled from its registry first when `always_pull` or
    /// when the engine does not have it.
    async fn fetch(&self, always_pull: bool) -> Result<String, PullError> {
        let images = &self.state.images;
        if !always_pull && let Some(id) = self.call("inspected", images.id(self.image)).await? {
            return Ok(id);
        }
        let from = deis_docker::registry_of(self.image).unwrap_or(DOCKER_HUB);
        event(
            self.state,
            self.app,
            &format!("pulling {} from {from}", self.image),
        );
        self.transfer(Way::From, from, images.pull(self.image))
            .await?;
        self.call("inspected", images.id(self.image))
            .await?
            .ok_or_else(|| PullError::Gone {
                image: self.image.to_owned(),
            })
    }

    /// Copies the image into the platform's `registry` as `<registry>/<app>:pull-<id>`.
    async fn copy(&self, registry: &str) -> Result<String, PullError> {
        let id = self
            .fetch(deis_docker::registry_of(self.image).is_some())
            .await?;
        let hex = id.trim_start_matches("sha256:");
        let target = format!("{registry}/{}:pull-{}", self.app, &hex[..hex.len().min(12)]);
        let images = &self.state.images;
        self.call("tagged", images.tag(self.image, &target)).await?;
        let credential = deis_runtime::push_credential(self.state.mirror.store().as_ref())
            .await
            .map_err(|source| PullError::Credential { source })?;
        let credentials = deis_docker::registry_credentials(
            credential.username(),
            credential.password(),
            registry,
        );
        self.transfer(Way::To, registry, images.push(&target, credentials))
            .await?;
        event(
            self.state,
            self.app,
            &format!(
                "pushed {} to the platform's registry as {target}",
                self.image
            ),
        );
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_registrys_last_word() {
        for (message, expect) in [
            (
                "manifest for 127.0.0.1:5999/nope:1 not found: manifest unknown: manifest unknown",
                "manifest unknown",
            ),
            (
                "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused",
                "connection refused",
            ),
            (
                "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: no such host",
                "lookup registry-1.docker.io on 10.0.0.53:53: no such host",
            ),
            ("unauthorized", "unauthorized"),
            ("  ", ""),
        ] {
            assert_eq!(reason(message), expect, "{message}");
        }
    }

    #[test]
    fn an_app_runs_only_its_own_repository_of_the_platform_registry() {
        let registry = "127.0.0.1:5000";
        for (image, own) in [
            ("127.0.0.1:5000/shop:pull-0123456789ab", true),
            ("127.0.0.1:5000/shop", true),
            ("127.0.0.1:5000/shop@sha256:ab", true),
            ("127.0.0.1:5000/victim:v3", false),
            ("127.0.0.1:5000/team/shop:1", false),
        ] {
            assert_eq!(
                own_repository(image, registry, "shop").is_ok(),
                own,
                "{image}"
            );
        }
        let refused = own_repository("127.0.0.1:5000/victim:v3", registry, "shop")
            .map_err(|e| (e.code(), e.to_string()));
        assert_eq!(
            refused,
            Err((
                Code::PermissionDenied,
                "127.0.0.1:5000/victim:v3 is in the repository victim of the platform's registry; the app shop runs images of 127.0.0.1:5000/shop only".to_owned()
            ))
        );
    }
}
