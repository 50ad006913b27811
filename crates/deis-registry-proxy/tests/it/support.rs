//! A registry proxy started in this process in front of a real `docker-registry`, and a small
//! client of the distribution API that presents the platform's credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deis_registry_proxy::{Config, Listeners};
use deis_runtime::{Credential, RegistrySecrets};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::Registry;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::relay::Relay;

/// A real registry, the proxy in front of it, and the platform's registry secrets.
pub(crate) struct Setup {
    pub(crate) registry: Registry,
    pub(crate) store: Arc<dyn ConfigStore>,
    pub(crate) secrets: RegistrySecrets,
    pub(crate) addr: SocketAddr,
    cache: tempfile::TempDir,
    pub(crate) max_bytes: u64,
    /// Between the proxy and the registry, when the test asked for one.
    pub(crate) relay: Option<Relay>,
    running: Option<(
        CancellationToken,
        JoinHandle<Result<(), deis_registry_proxy::Error>>,
    )>,
}

impl Setup {
    /// A registry and a proxy with a 10 GiB cache.
    pub(crate) async fn start() -> Setup {
        Setup::with_cache_max(10 << 30).await
    }

    /// A registry and a proxy whose cache keeps at most `max_bytes`.
    pub(crate) async fn with_cache_max(max_bytes: u64) -> Setup {
        let registry = Registry::start().await;
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        let secrets = RegistrySecrets::load(store.as_ref())
            .await
            .expect("registry secrets");
        let mut setup = Setup {
            registry,
            store,
            secrets,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cache: tempfile::tempdir().expect("cache directory"),
            max_bytes,
            relay: None,
            running: None,
        };
        setup.start_proxy().await;
        setup
    }

    /// A registry and a proxy that reaches it through a [`Relay`].
    pub(crate) async fn with_relay() -> Setup {
        let mut setup = Setup::start().await;
        setup.stop_proxy().await;
        setup.relay = Some(Relay::start(setup.registry.addr()).await);
        setup.start_proxy().await;
        setup
    }

    /// Starts the proxy (on the address it had, if it ran before).
    pub(crate) async fn start_proxy(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the proxy");
        self.addr = listener.local_addr().expect("address");
        let config = Config {
            listen: self.addr,
            upstream: format!(
                "http://{}",
                self.relay.as_ref().map_or(self.registry.addr(), |r| r.addr)
            ),
            cache_dir: self.cache.path().to_owned(),
            cache_max_bytes: self.max_bytes,
            drain: Duration::from_secs(2),
            ..Config::default()
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(deis_registry_proxy::run(
            config,
            self.store.clone(),
            Listeners { http: listener },
            shutdown.clone(),
        ));
        self.running = Some((shutdown, task));
        let client = self.anonymous();
        deis_testkit::eventually(Duration::from_secs(10), "the proxy to answer", || {
            let client = client.clone();
            async move {
                let answer = client
                    .try_send("GET", "/healthz", &[], Bytes::new())
                    .await?;
                (answer.status == 200).then_some(()).ok_or(answer.text())
            }
        })
        .await;
    }

    /// Stops the proxy and waits until it returned.
    pub(crate) async fn stop_proxy(&mut self) {
        if let Some((shutdown, task)) = self.running.take() {
            shutdown.cancel();
            task.await
                .expect("proxy task")
                .expect("the proxy stops cleanly");
        }
    }

    /// The cache's copy of a blob.
    pub(crate) fn cached_blob(&self, digest: &str) -> PathBuf {
        self.cache
            .path()
            .join("blobs")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// `host:port` of the proxy, as image references name it.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The builder's credential.
    pub(crate) fn push_credential(&self) -> Credential {
        self.secrets.push_credential()
    }

    /// An app's credential.
    pub(crate) fn pull_credential(&self, app: &str) -> Credential {
        self.secrets
            .pull_credential(&app.parse().expect("app name"))
    }

    /// A client of the proxy presenting the builder's credential.
    pub(crate) fn builder(&self) -> Client {
        Client::new(self.addr, Some(self.push_credential().basic_header()))
    }

    /// A client of the proxy presenting `app`'s credential.
    pub(crate) fn app(&self, app: &str) -> Client {
        Client::new(self.addr, Some(self.pull_credential(app).basic_header()))
    }

    /// A client of the proxy without a credential.
    pub(crate) fn anonymous(&self) -> Client {
        Client::new(self.addr, None)
    }

    /// A client of the registry itself.
    pub(crate) fn direct(&self) -> Client {
        Client {
            monolithic: false,
            ..Client::new(self.registry.addr(), None)
        }
    }

    /// The value of one series of `/metrics` (`name{labels}` exactly as exposed), 0 if absent.
    pub(crate) async fn metric(&self, series: &str) -> f64 {
        let text = self.anonymous().get("/metrics").await.text();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first error code of a spec error body.
    pub(crate) fn error_code(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not a JSON error body ({e}): {self:?}"));
        json["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }
}

/// A client of a registry API.
#[derive(Clone)]
pub(crate) struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    auth: Option<String>,
    /// Whether uploads take one request (the proxy does them; distribution 2.8 does not).
    monolithic: bool,
}

impl Client {
    fn new(addr: SocketAddr, auth: Option<String>) -> Client {
        Client {
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
            addr,
            auth,
            monolithic: true,
        }
    }

    /// `method path` with `headers` and `body`, or why no answer came.
    pub(crate) async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let uri = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("http://{}{path}", self.addr)
        };
        let mut request = http::Request::builder().method(method).uri(uri);
        if let Some(auth) = &self.auth {
            request = request.header("authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        self.try_send(method, path, headers, body.into())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Bytes::new()).await
    }

    /// Uploads `bytes` (in one request, `POST ?digest=`, when the client is the proxy's) and
    /// returns its digest.
    pub(crate) async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = digest(bytes);
        let mut target = format!("/v2/{repository}/blobs/uploads/?digest={digest}");
        if !self.monolithic {
            let started = self
                .send(
                    "POST",
                    &format!("/v2/{repository}/blobs/uploads/"),
                    &[],
                    Bytes::new(),
                )
                .await;
            target = format!("{}&digest={digest}", started.header("location"));
        }
        let method = if self.monolithic { "POST" } else { "PUT" };
        let answer = self
            .send(
                method,
                &target,
                &[("content-type", "application/octet-stream")],
                Bytes::copy_from_slice(bytes),
            )
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        digest
    }

    /// Puts a manifest and returns its digest.
    pub(crate) async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let answer = self
            .send(
                "PUT",
                &format!("/v2/{repository}/manifests/{reference}"),
                &[("content-type", media_type)],
                Bytes::copy_from_slice(body),
            )
            .await;
        assert_eq!(answer.status, 201, "{answer:?}");
        digest(body)
    }

    /// Pushes an image of `layers` (made-up content) as `repository:tag`.
    pub(crate) async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        layers: &[Vec<u8>],
    ) -> Image {
        let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "tag": tag});
        let config = config.to_string().into_bytes();
        let config_digest = self.push_blob(repository, &config).await;
        let mut layer_digests = Vec::new();
        for layer in layers {
            layer_digests.push(self.push_blob(repository, layer).await);
        }
        let manifest = schema2(&config_digest, config.len(), &layer_digests, layers);
        let manifest_digest = self
            .push_manifest(repository, tag, SCHEMA2, manifest.as_bytes())
            .await;
        Image {
            manifest: manifest_digest,
            layers: layer_digests,
        }
    }
}

/// What [`Client::push_image`] pushed.
pub(crate) struct Image {
    pub(crate) manifest: String,
    pub(crate) layers: Vec<String>,
}

/// Docker's image manifest type.
pub(crate) const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn schema2(config: &str, config_size: usize, layers: &[String], bytes: &[Vec<u8>]) -> String {
    let layers: Vec<_> = layers
        .iter()
        .zip(bytes)
        .map(|(digest, bytes)| {
            serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": bytes.len(),
                "digest": digest,
            })
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": SCHEMA2,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config_size,
            "digest": config,
        },
        "layers": layers,
    })
    .to_string()
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `len` bytes that look random, different for each `seed`.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
