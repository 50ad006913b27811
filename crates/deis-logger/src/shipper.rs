//! The shipper (Deis's logspout): follows stdout and stderr of every app container on this
//! host's Docker engine and sends the lines to the logger as `{app}[{type}.{num}]`.
//!
//! Nothing is lost or repeated across restarts of Docker, the logger or the shipper: each line
//! carries its Docker timestamp (nanoseconds) as its position, the logger stores a container's
//! lines only beyond the last position it stored for it, a batch is retried until the logger
//! takes it, and the last position acknowledged per container is kept in a state file from
//! which a restarted shipper resumes (`since`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    EventsOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use chrono::DateTime;
use deis_proto::logger::v1 as pb;
use deis_proto::logger::v1::log_service_client::LogServiceClient;
use deis_store::ConfigStore;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The label the scheduler puts on app containers.
const APP_LABEL: &str = "deis.app";

/// What the shipper needs.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// This host's name in shipper identities.
    pub host: String,
    /// The logger's gRPC URL; from `/deis/logs/{host,port}` when absent.
    pub logger_url: Option<String>,
    /// Where acknowledged positions are kept between runs.
    pub state_file: PathBuf,
    /// Only containers with all these labels (besides `deis.app`).
    pub labels: HashMap<String, String>,
}

/// One line read from a container.
struct Line {
    container: String,
    entry: pb::LogEntry,
}

/// Acknowledged positions per container id.
type Progress = Arc<Mutex<HashMap<String, u64>>>;

/// Runs until `shutdown`.
pub async fn run(
    config: ShipperConfig,
    docker: Docker,
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
) {
    let progress: Progress = Arc::new(Mutex::new(load(&config.state_file)));
    let (tx, rx) = mpsc::channel::<Line>(10_000);
    let sender = tokio::spawn(send(
        config.clone(),
        store,
        rx,
        progress.clone(),
        shutdown.clone(),
    ));
    let following: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut delay = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        // Follow what runs now, then whatever starts; on any Docker error, start over.
        let mut filters = label_filters(&config);
        let listing = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await;
        if let Ok(containers) = listing {
            for c in containers {
                if let Some(id) = c.id {
                    follow(&docker, id, &following, &progress, &tx, &shutdown);
                }
            }
        }
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert("event".into(), vec!["start".into()]);
        let mut events = docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = events.next() => e,
            };
            match event {
                Some(Ok(e)) => {
                    delay = Duration::from_millis(200);
                    if let Some(id) = e.actor.and_then(|a| a.id) {
                        follow(&docker, id, &following, &progress, &tx, &shutdown);
                    }
                }
                _ => break,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    drop(tx);
    let _ = sender.await;
}

fn label_filters(config: &ShipperConfig) -> HashMap<String, Vec<String>> {
    let mut labels = vec![APP_LABEL.to_owned()];
    labels.extend(config.labels.iter().map(|(k, v)| format!("{k}={v}")));
    HashMap::from([("label".to_owned(), labels)])
}

/// Starts following a container unless it is followed already.
fn follow(
    docker: &Docker,
    id: String,
    following: &Arc<Mutex<HashSet<String>>>,
    progress: &Progress,
    tx: &mpsc::Sender<Line>,
    shutdown: &CancellationToken,
) {
    if !following
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone())
    {
        return;
    }
    let (docker, following, progress, tx, shutdown) = (
        docker.clone(),
        following.clone(),
        progress.clone(),
        tx.clone(),
        shutdown.clone(),
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = read_container(&docker, &id, &progress, &tx) => {}
        }
        following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    });
}

/// Reads a container's output from the last acknowledged position until its stream ends.
async fn read_container(docker: &Docker, id: &str, progress: &Progress, tx: &mpsc::Sender<Line>) {
    let Ok(info) = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    else {
        return;
    };
    let name = info
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    let Some(app) = labels.get(APP_LABEL).cloned() else {
        return;
    };
    // `{app}_v{N}.{type}.{num}` -> `{type}.{num}`; a one-off `run` container is `run.N`.
    let source = name
        .split_once('.')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| name.clone());
    let last = progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .copied()
        .unwrap_or(0);
    let since = if last == 0 {
        0
    } else {
        i32::try_from(last / 1_000_000_000).unwrap_or(i32::MAX)
    };
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since)
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut partial = String::new();
    while let Some(Ok(output)) = stream.next().await {
        let bytes = match output {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            let Some((stamp, message)) = line.split_once(' ') else {
                continue;
            };
            let Ok(time) = DateTime::parse_from_rfc3339(stamp) else {
                continue;
            };
            let position = u64::try_from(time.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
            if position <= last {
                continue;
            }
            let entry = pb::LogEntry {
                app: app.clone(),
                source: source.clone(),
                time: Some(prost_types::Timestamp {
                    seconds: time.timestamp(),
                    nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
                }),
                message: message.to_owned(),
                offset: position,
            };
            if tx
                .send(Line {
                    container: id.to_owned(),
                    entry,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Sends lines in batches (one container per batch), retrying a batch until the logger takes
/// it, then records the positions acknowledged.
async fn send(
    config: ShipperConfig,
    store: Arc<dyn ConfigStore>,
    mut rx: mpsc::Receiver<Line>,
    progress: Progress,
    shutdown: CancellationToken,
) {
    let mut client: Option<LogServiceClient<tonic::transport::Channel>> = None;
    while let Some(first) = rx.recv().await {
        let mut batches: Vec<(String, Vec<pb::LogEntry>)> =
            vec![(first.container, vec![first.entry])];
        while let Ok(line) = rx.try_recv() {
            match batches.iter_mut().find(|(c, _)| *c == line.container) {
                Some((_, entries)) if entries.len() < 2000 => entries.push(line.entry),
                _ => batches.push((line.container, vec![line.entry])),
            }
            if batches.len() > 64 {
                break;
            }
        }
        for (container, entries) in batches {
            let last = entries.iter().map(|e| e.offset).max().unwrap_or(0);
            let request = pb::PushRequest {
                shipper: format!("{}/{container}", config.host),
                sequence: 0,
                entries,
            };
            let mut delay = Duration::from_millis(100);
            loop {
                if client.is_none() {
                    client = connect(&config, &store).await;
                }
                if let Some(c) = client.as_mut()
                    && c.push(request.clone()).await.is_ok()
                {
                    break;
                }
                client = None;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(container, last);
        }
        save(&config.state_file, &progress);
    }
}

async fn connect(
    config: &ShipperConfig,
    store: &Arc<dyn ConfigStore>,
) -> Option<LogServiceClient<tonic::transport::Channel>> {
    let url = match &config.logger_url {
        Some(url) => url.clone(),
        None => deis_runtime::Endpoint::lookup(store.as_ref(), deis_store::keys::Component::Logs)
            .await?
            .http_url(),
    };
    LogServiceClient::connect(url).await.ok()
}

fn load(path: &PathBuf) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn save(path: &PathBuf, progress: &Progress) {
    let text = {
        let progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::to_string(&*progress).unwrap_or_default()
    };
    let tmp = path.with_extension("tmp");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        tracing::warn!(path = %path.display(), "Cannot save the shipper's positions; a restart may resend lines (the logger skips them)");
    }
}
