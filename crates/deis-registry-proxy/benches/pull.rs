//! Pull benchmark against the local Docker engine and a real `docker-registry`: an image of
//! five layers of 40 MB of random bytes (made locally) pulled into the engine directly from the
//! registry, then through the proxy with a cold cache, warm, and warm with the registry
//! stopped; the image is removed from the engine between pulls. Each is done `ROUNDS` times
//! (a fresh cache for every cold pull) and the median is reported with its ratio to the direct
//! pull (goals: cold at least 0.9x of direct's speed, warm at least as fast as direct).
//!
//! A second table times the same layers fetched over HTTP alone (five at once, bodies read and
//! dropped), which shows the proxy's own cost without the engine's unpacking.
//!
//! Run: `cargo bench -p deis-registry-proxy --bench pull`.

#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use deis_registry_proxy::{Config, Listeners};
use deis_runtime::RegistrySecrets;
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::{Registry, TestDocker};
use tokio_util::sync::CancellationToken;

const LAYERS: usize = 5;
const LAYER_BYTES: u64 = 40 << 20;
const ROUNDS: usize = 5;

/// A proxy running in this process on a cache directory of its own.
struct Proxy {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), deis_registry_proxy::Error>>,
    _cache: tempfile::TempDir,
}

async fn start_proxy(registry: &Registry, store: Arc<dyn ConfigStore>) -> Proxy {
    let cache = tempfile::tempdir().expect("cache directory");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let config = Config {
        listen: addr,
        upstream: format!("http://{}", registry.addr()),
        cache_dir: cache.path().to_owned(),
        ..Config::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(deis_registry_proxy::run(
        config,
        store,
        Listeners { http: listener },
        shutdown.clone(),
    ));
    Proxy {
        addr,
        shutdown,
        task,
        _cache: cache,
    }
}

async fn stop_proxy(proxy: Proxy) {
    proxy.shutdown.cancel();
    proxy.task.await.expect("proxy task").expect("a clean stop");
}

/// Pulls `repository:v1` into the engine and removes it again; the pull's time.
async fn timed_pull(
    docker: &TestDocker,
    repository: &str,
    credentials: Option<DockerCredentials>,
) -> Duration {
    let image = format!("{repository}:v1");
    let started = Instant::now();
    docker
        .pull(&image, credentials)
        .await
        .unwrap_or_else(|e| panic!("pulling {image}: {e}"));
    let took = started.elapsed();
    docker.remove_image(&image).await;
    took
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

async fn bench() {
    let docker = TestDocker::connect().await;
    let mut registry = Registry::start().await;
    println!(
        "building an image of {LAYERS} layers of {} MB of random bytes...",
        LAYER_BYTES >> 20
    );
    let built = docker.random_layers_image(LAYERS, LAYER_BYTES).await;
    let direct_repo = format!("{}/bench", registry.addr());
    docker.tag_image(&built, &direct_repo, "v1").await;
    docker
        .push(&direct_repo, "v1", None)
        .await
        .expect("push to the registry");
    docker.remove_image(&format!("{direct_repo}:v1")).await;
    docker.remove_image(&built).await;

    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    let secrets = RegistrySecrets::load(store.as_ref())
        .await
        .expect("secrets");
    let credential = secrets.pull_credential(&"bench".parse().expect("app name"));

    let (mut direct, mut cold, mut warm, mut down) = (vec![], vec![], vec![], vec![]);
    for round in 1..=ROUNDS {
        println!("round {round} of {ROUNDS}...");
        direct.push(timed_pull(&docker, &direct_repo, None).await);
        let proxy = start_proxy(&registry, store.clone()).await;
        let repository = format!("{}/bench", proxy.addr);
        let credentials = || {
            Some(DockerCredentials {
                username: Some(credential.username().to_owned()),
                password: Some(credential.password().to_owned()),
                serveraddress: Some(proxy.addr.to_string()),
                ..Default::default()
            })
        };
        cold.push(timed_pull(&docker, &repository, credentials()).await);
        warm.push(timed_pull(&docker, &repository, credentials()).await);
        registry.stop();
        down.push(timed_pull(&docker, &repository, credentials()).await);
        registry.start_again().await;
        stop_proxy(proxy).await;
    }

    let mb = (LAYERS as u64 * LAYER_BYTES) as f64 / 1e6;
    println!();
    println!("pull of {mb:.0} MB ({LAYERS} layers) into the engine, median of {ROUNDS}");
    report(mb, [&direct, &cold, &warm, &down]);

    let layers = layer_digests(registry.addr()).await;
    let auth = credential.basic_header();
    let (mut direct, mut cold, mut warm, mut down) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        direct.push(fetch_layers(registry.addr(), None, &layers).await);
        let proxy = start_proxy(&registry, store.clone()).await;
        cold.push(fetch_layers(proxy.addr, Some(&auth), &layers).await);
        warm.push(fetch_layers(proxy.addr, Some(&auth), &layers).await);
        registry.stop();
        down.push(fetch_layers(proxy.addr, Some(&auth), &layers).await);
        registry.start_again().await;
        stop_proxy(proxy).await;
    }
    println!();
    println!("the same {LAYERS} layers fetched over HTTP at once, median of {ROUNDS}");
    report(mb, [&direct, &cold, &warm, &down]);
}

/// Prints one table: each way's median, its speed and its speed against the direct one.
fn report(mb: f64, [direct, cold, warm, down]: [&Vec<Duration>; 4]) {
    let reference = median(direct);
    println!(
        "| pull                       | median   | MB/s  | speed vs direct | every run                     |"
    );
    println!(
        "|----------------------------|----------|-------|-----------------|-------------------------------|"
    );
    for (name, times) in [
        ("direct from the registry", direct),
        ("proxy, cold cache", cold),
        ("proxy, warm cache", warm),
        ("proxy, warm, registry down", down),
    ] {
        let time = median(times);
        let every: Vec<String> = times
            .iter()
            .map(|t| format!("{:.2}", t.as_secs_f64()))
            .collect();
        println!(
            "| {name:<26} | {:>6.2} s | {:>5.0} | {:>14.2}x | {:<29} |",
            time.as_secs_f64(),
            mb / time.as_secs_f64(),
            reference.as_secs_f64() / time.as_secs_f64(),
            every.join(" ")
        );
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<bytes::Bytes>,
>;

fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// `GET path` from `addr`, the body read and dropped; its length.
async fn get(client: &HttpClient, addr: SocketAddr, path: &str, auth: Option<&str>) -> Vec<u8> {
    use http_body_util::BodyExt;
    let mut request = http::Request::get(format!("http://{addr}{path}")).header(
        "accept",
        "application/vnd.docker.distribution.manifest.v2+json",
    );
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request
        .body(http_body_util::Empty::new())
        .expect("a request");
    let response = client.request(request).await.expect("an answer");
    assert!(response.status().is_success(), "GET {path}: {response:?}");
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the body");
        if let Some(data) = frame.data_ref()
            && path.contains("/manifests/")
        {
            kept.extend_from_slice(data);
        }
    }
    kept
}

/// The layers of `bench:v1` as the registry lists them.
async fn layer_digests(registry: SocketAddr) -> Vec<String> {
    let manifest = get(&http_client(), registry, "/v2/bench/manifests/v1", None).await;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("a manifest");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_owned))
        .collect()
}

/// Fetches every layer at once; the time until the last one is read.
async fn fetch_layers(addr: SocketAddr, auth: Option<&str>, layers: &[String]) -> Duration {
    let client = http_client();
    let started = Instant::now();
    futures_util::future::join_all(layers.iter().map(|layer| {
        let client = client.clone();
        async move { get(&client, addr, &format!("/v2/bench/blobs/{layer}"), auth).await }
    }))
    .await;
    started.elapsed()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}
