//! Pushing a built image to the platform's registry (the registry proxy) with the builder's
//! credential. The pusher reads a few lines of the engine's progress, not its flood: one per
//! layer once the registry has it (pushed, already there, mounted), then the digest.

use bollard::Docker;
use bollard::models::PushImageInfo;
use bollard::query_parameters::PushImageOptionsBuilder;
use deis_runtime::Credential;
use deis_store::ConfigStore;
use futures_util::StreamExt;

use crate::build::image::EngineError;
use crate::output::Output;

/// Why a built image did not reach the registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The builder's registry credential cannot be had.
    #[error("the registry's credential cannot be read: {source}")]
    Credential {
        registry: String,
        #[source]
        source: deis_runtime::SecretError,
    },
    /// The registry refused the image: its message.
    #[error("{registry} refused {image}: {message}")]
    Refused {
        registry: String,
        image: String,
        message: String,
    },
    /// The engine failed the push call itself.
    #[error("pushing {image} failed: {source}")]
    Engine {
        image: String,
        #[source]
        source: EngineError,
    },
}

/// Pushes `image` (`registry/app:tag`) to `registry` as the builder, telling `out` how it goes.
pub(crate) async fn push(
    docker: &Docker,
    store: &dyn ConfigStore,
    registry: &str,
    image: &str,
    out: &mut Output,
) -> Result<(), PublishError> {
    let credential = deis_runtime::push_credential(store)
        .await
        .map_err(|source| PublishError::Credential {
            registry: registry.to_owned(),
            source,
        })?;
    push_as(docker, &credential, registry, image, out).await
}

/// Pushes `image` to `registry` with `credential`.
async fn push_as(
    docker: &Docker,
    credential: &Credential,
    registry: &str,
    image: &str,
    out: &mut Output,
) -> Result<(), PublishError> {
    let credentials =
        deis_docker::registry_credentials(credential.username(), credential.password(), registry);
    let (name, tag) = deis_docker::split_reference(image);
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(name, Some(options), Some(credentials));
    let refused = |message: String| PublishError::Refused {
        registry: registry.to_owned(),
        image: image.to_owned(),
        message,
    };
    let mut progress = Progress::default();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            // What went wrong once the push was under way: the registry's own words.
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(refused(error)),
            Err(e) => {
                return Err(PublishError::Engine {
                    image: image.to_owned(),
                    source: e.into(),
                });
            }
        };
        if let Some(message) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(refused(message));
        }
        if let Some(line) = progress.line(&info) {
            out.raw(&format!("       {line}\n")).await;
        }
    }
    tracing::info!(%registry, layers = progress.total, "Image pushed");
    Ok(())
}

/// The engine's push progress, kept to the lines worth showing.
#[derive(Default)]
struct Progress {
    /// Layers the engine prepares (it says so once for each, before anything moves).
    total: usize,
    /// Layers the registry has so far.
    done: usize,
    /// The seconds of the last `Retrying in N seconds` (the engine counts down each second,
    /// for every layer): only the start of a countdown is shown.
    retry: u64,
}

impl Progress {
    /// The line to show for one progress item, if any.
    fn line(&mut self, info: &PushImageInfo) -> Option<String> {
        let status = info.status.as_deref()?;
        match status {
            "Preparing" => {
                self.total += 1;
                None
            }
            "Pushed" | "Layer already exists" => Some(self.layer_done(status)),
            _ if status.starts_with("Mounted from ") => Some(self.layer_done(status)),
            _ if status.contains(": digest: ") => Some(status.to_owned()),
            _ => {
                let seconds = status
                    .strip_prefix("Retrying in ")?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()?;
                let new = seconds > self.retry;
                self.retry = seconds;
                new.then(|| status.to_owned())
            }
        }
    }

    fn layer_done(&mut self, status: &str) -> String {
        self.done += 1;
        format!("{status} ({}/{})", self.done, self.total.max(self.done))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn status(text: &str) -> PushImageInfo {
        PushImageInfo {
            status: Some(text.to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn a_push_reads_as_a_line_per_layer_and_the_digest() {
        let engine = [
            "The push refers to repository [127.0.0.1:5000/shop]",
            "Preparing",
            "Preparing",
            "Retrying in 5 seconds",
            "Retrying in 5 seconds",
            "Retrying in 4 seconds",
            "Retrying in 1 second",
            "Retrying in 10 seconds",
            "Retrying in 10 seconds",
            "Waiting",
            "Pushing",
            "Pushing",
            "Layer already exists",
            "Pushing",
            "Pushed",
            "git-1234567: digest: sha256:ab12 size: 739",
        ];
        let mut progress = Progress::default();
        let shown: Vec<String> = engine
            .iter()
            .filter_map(|s| progress.line(&status(s)))
            .collect();
        assert_eq!(
            shown,
            [
                "Retrying in 5 seconds",
                "Retrying in 10 seconds",
                "Layer already exists (1/2)",
                "Pushed (2/2)",
                "git-1234567: digest: sha256:ab12 size: 739"
            ]
        );
        assert_eq!(
            Progress::default().line(&status("Mounted from other")),
            Some("Mounted from other (1/1)".to_owned())
        );
    }

    /// What `out` was told, once closed.
    async fn told(out: Output, mut reader: tokio::io::DuplexStream) -> String {
        out.close().await;
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut text)
            .await
            .expect("the output");
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_builder_pushes_through_the_proxy_and_a_refusal_is_the_proxys_message() {
        let registry = deis_testkit::Registry::start().await;
        let docker = deis_testkit::TestDocker::connect().await;
        let store: Arc<dyn ConfigStore> = Arc::new(deis_store::MemoryStore::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let proxy = listener.local_addr().expect("address").to_string();
        let cache = tempfile::tempdir().expect("cache directory");
        let stop = tokio_util::sync::CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        let config = deis_registry_proxy::Config {
            upstream: format!("http://{}", registry.addr()),
            cache_dir: cache.path().to_owned(),
            ..deis_registry_proxy::Config::default()
        };
        let listeners = deis_registry_proxy::Listeners { http: listener };
        tokio::spawn(deis_registry_proxy::run(
            config,
            store.clone(),
            listeners,
            stop,
        ));
        let app = format!("shop{}", docker.id().replace('x', "-"));
        let image = format!("{proxy}/{app}:git-1234567");
        let base = docker.base_image().await;
        docker
            .build_image(&image, &format!("FROM {base}\nRUN echo shop > /app\n"))
            .await;

        // A credential that may not push (the app's own) is refused with the proxy's message.
        let (writer, reader) = tokio::io::duplex(1 << 16);
        let mut out = Output::new(writer);
        let app_credential =
            deis_runtime::pull_credential(store.as_ref(), &app.parse().expect("app"))
                .await
                .expect("the app's credential");
        let refused = push_as(docker.client(), &app_credential, &proxy, &image, &mut out)
            .await
            .expect_err("an app may not push")
            .to_string();
        assert_eq!(
            refused,
            format!("{proxy} refused {image}: denied: requested access to the resource is denied")
        );
        assert!(!told(out, reader).await.contains("digest"));

        // The builder's pushes, in a few lines.
        let (writer, reader) = tokio::io::duplex(1 << 16);
        let mut out = Output::new(writer);
        push(docker.client(), store.as_ref(), &proxy, &image, &mut out)
            .await
            .expect("the builder pushes");
        let text = told(out, reader).await;
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() <= 3, "{text}");
        assert!(lines.iter().all(|l| l.starts_with("       ")), "{text}");
        assert!(text.contains("Pushed (1/"), "{text}");
        assert!(text.contains("git-1234567: digest: sha256:"), "{text}");
    }
}
