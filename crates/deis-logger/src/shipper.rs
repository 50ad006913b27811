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
use bollard::query_parameters::{EventsOptionsBuilder, LogsOptionsBuilder};
use deis_proto::logger::v1 as pb;
use deis_store::ConfigStore;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::frames::{Assembled, Assembler};

/// The label the scheduler puts on app containers.
const APP_LABEL: &str = deis_docker::labels::APP;

/// The most text one batch to the logger carries.
const BATCH_BYTES: usize = 1 << 20;

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
    let queued = Positions {
        acknowledged: progress.clone(),
        queued: Progress::default(),
    };
    let (tx, rx) = mpsc::channel::<Line>(10_000);
    let sender = tokio::spawn(send(
        config.clone(),
        store,
        rx,
        progress.clone(),
        shutdown.clone(),
    ));
    let following: Arc<Mutex<HashSet<String>>> = Arc::default();
    // One task per followed container; all end with `shutdown`, and are waited for.
    let tasks = tokio_util::task::TaskTracker::new();
    let mut delay = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        // Follow what runs now, then whatever starts; on any Docker error, start over.
        let mut filters = label_filters(&config);
        let listing = deis_docker::list_labelled(&docker, &filters["label"], false).await;
        if let Ok(containers) = listing {
            for c in containers {
                if let Some(id) = c.id {
                    follow(&docker, id, &following, &queued, &tx, &shutdown, &tasks);
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
                        follow(&docker, id, &following, &queued, &tx, &shutdown, &tasks);
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
    tasks.close();
    tasks.wait().await;
    drop(tx);
    let _ = sender.await;
}

fn label_filters(config: &ShipperConfig) -> HashMap<String, Vec<String>> {
    let mut labels = vec![APP_LABEL.to_owned()];
    labels.extend(
        config
            .labels
            .iter()
            .map(|(k, v)| deis_docker::labels::filter(k, v)),
    );
    HashMap::from([("label".to_owned(), labels)])
}

/// Starts following a container unless it is followed already.
fn follow(
    docker: &Docker,
    id: String,
    following: &Arc<Mutex<HashSet<String>>>,
    positions: &Positions,
    tx: &mpsc::Sender<Line>,
    shutdown: &CancellationToken,
    tasks: &tokio_util::task::TaskTracker,
) {
    if !following
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone())
    {
        return;
    }
    let (docker, following, positions, tx, shutdown) = (
        docker.clone(),
        following.clone(),
        positions.clone(),
        tx.clone(),
        shutdown.clone(),
    );
    tasks.spawn(async move {
        // Followed again as long as it runs: after a restart (whose `start` event came while
        // this task still held the id) or a broken stream.
        loop {
            let again = tokio::select! {
                _ = shutdown.cancelled() => false,
                again = read_container(&docker, &id, &positions, &tx) => again,
            };
            if !again {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    });
}

/// Reads a container's output from the last position taken until its stream ends; whether
/// it runs (again) and should be followed again.
async fn read_container(
    docker: &Docker,
    id: &str,
    positions: &Positions,
    tx: &mpsc::Sender<Line>,
) -> bool {
    let Ok(info) = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    else {
        return false;
    };
    let name = info
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    // A container is an app's only when its label and its name (`{app}_v{N}.{type}.{num}`)
    // both say so: neither alone can be chosen to write into another app's log.
    let Some(app) = labels.get(APP_LABEL).cloned() else {
        return false;
    };
    if !name.starts_with(&format!("{app}_v")) {
        tracing::debug!(container = %id, name, app, "Not following: its name is not the app's");
        return false;
    }
    // `{app}_v{N}.{type}.{num}` -> `{type}.{num}`; a one-off `run` container is `run.N`.
    let source = name
        .split_once('.')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| name.clone());
    let started_at = info.state.as_ref().and_then(|s| s.started_at.clone());
    let (app, source) = (&app, &source);
    let ship = |line: Assembled| async move {
        let position = line.position;
        let entry = pb::LogEntry {
            app: app.clone(),
            source: source.clone(),
            time: Some(timestamp(position)),
            message: line.text,
            offset: position,
        };
        let sent = tx
            .send(Line {
                container: id.to_owned(),
                entry,
            })
            .await;
        positions.queue(id, position);
        sent
    };
    let mut lines = Assembler::new(positions.last(id));
    if read_log(
        docker,
        id,
        positions.last(id),
        true,
        None,
        &mut lines,
        &ship,
    )
    .await
    .is_err()
    {
        return false;
    }
    // The stream ended. If the run that printed it is over (the container stopped, was
    // restarted or removed), its log is read once more without following: the engine may end
    // a follower before it writes a last line that has no newline. What is left unterminated
    // then is the last line, complete: ship it. If the same run goes on (the engine's stream
    // broke), the next follow reads that line again, whole.
    let finished = finished(docker, id, started_at.as_deref()).await;
    tracing::debug!(container = %id, ?finished, "The container's log stream ended");
    match finished {
        Finished::No => true,
        Finished::Yes { ended, running } => {
            // Only what that run wrote: a restarted container's new run is read when it is
            // followed again.
            let mut rest = Assembler::new(positions.last(id));
            if read_log(
                docker,
                id,
                positions.last(id),
                false,
                ended,
                &mut rest,
                &ship,
            )
            .await
            .is_ok()
                && let Some(line) = rest.end()
            {
                let _ = ship(line).await;
            }
            running
        }
        Finished::Removed => {
            if let Some(line) = lines.end() {
                let _ = ship(line).await;
            }
            positions.forget(id);
            false
        }
    }
}

/// Reads `id`'s log from position `after` (following it with `follow`, and only up to time
/// `until` when given) into `lines`, shipping each complete line; `Err` when the shipper is
/// shutting down.
async fn read_log<F, Fut>(
    docker: &Docker,
    id: &str,
    after: u64,
    follow: bool,
    until: Option<u64>,
    lines: &mut Assembler,
    ship: &F,
) -> Result<(), ()>
where
    F: Fn(Assembled) -> Fut,
    Fut: Future<Output = Result<(), mpsc::error::SendError<Line>>>,
{
    let since = i32::try_from(after / 1_000_000_000).unwrap_or(i32::MAX);
    let options = LogsOptionsBuilder::new()
        .follow(follow)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since)
        .build();
    let mut stream = docker.logs(id, Some(options));
    while let Some(Ok(output)) = stream.next().await {
        let bytes = match output {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        if let (Some(until), Some(time)) = (until, crate::frames::frame_time(&bytes))
            && time > until
        {
            break;
        }
        for line in lines.push(&bytes) {
            ship(line).await.map_err(|_| ())?;
        }
    }
    Ok(())
}

/// Acknowledged positions per container (kept in the state file) and the positions of lines
/// queued for sending, so that a container followed again (after a restart of the container or
/// of the engine's stream) resumes after what this process already took, acknowledged or not.
#[derive(Clone)]
struct Positions {
    acknowledged: Progress,
    queued: Progress,
}

impl Positions {
    fn last(&self, id: &str) -> u64 {
        let get = |p: &Progress| {
            p.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .copied()
                .unwrap_or(0)
        };
        get(&self.acknowledged).max(get(&self.queued))
    }

    fn queue(&self, id: &str, position: u64) {
        self.queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), position);
    }

    fn forget(&self, id: &str) {
        self.queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[derive(Debug)]
enum Finished {
    /// The run goes on: the stream broke.
    No,
    /// The run stopped; `running` when the container was started again since, and then
    /// `ended` is the last moment (nanoseconds) before the new run began.
    Yes { ended: Option<u64>, running: bool },
    /// The container is gone.
    Removed,
}

/// Whether the run of `id` that started at `started_at` is over.
async fn finished(docker: &Docker, id: &str, started_at: Option<&str>) -> Finished {
    match docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(info) => {
            let state = info.state.unwrap_or_default();
            let running = state.running == Some(true);
            if !running || state.started_at.as_deref() != started_at {
                // Restarted: the new run's lines come from its start on (the log copier may
                // write the old run's last line a little after the old run's end, so that is
                // not the bound).
                let ended = if running {
                    state
                        .started_at
                        .as_deref()
                        .and_then(|t| crate::frames::frame_time(format!("{t} ").as_bytes()))
                        .map(|t| t.saturating_sub(1))
                } else {
                    None
                };
                Finished::Yes { ended, running }
            } else {
                Finished::No
            }
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Finished::Removed,
        Err(_) => Finished::No,
    }
}

fn timestamp(nanos: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
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
    let mut pusher = deis_runtime::LogPusher::new(store, config.logger_url.clone());
    while let Some(first) = rx.recv().await {
        let size = first.entry.message.len();
        let mut batches: Vec<(String, Vec<pb::LogEntry>, usize)> =
            vec![(first.container, vec![first.entry], size)];
        // Every batch stays well under gRPC's 4 MiB message limit: at most 2000 lines and
        // 1 MiB of text (a line is at most `MAX_LINE_BYTES`).
        while let Ok(line) = rx.try_recv() {
            let size = line.entry.message.len();
            match batches.iter_mut().rfind(|(c, _, _)| *c == line.container) {
                Some((_, entries, bytes))
                    if entries.len() < 2000 && *bytes + size <= BATCH_BYTES =>
                {
                    entries.push(line.entry);
                    *bytes += size;
                }
                _ => batches.push((line.container, vec![line.entry], size)),
            }
            if batches.len() > 64 {
                break;
            }
        }
        for (container, entries, _) in batches {
            let last = entries.iter().map(|e| e.offset).max().unwrap_or(0);
            let request = pb::PushRequest {
                shipper: format!("{}/{container}", config.host),
                sequence: 0,
                entries,
            };
            if !pusher.push(&request, &shutdown).await {
                return;
            }
            progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(container, last);
        }
        save(&config.state_file, &progress);
    }
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
