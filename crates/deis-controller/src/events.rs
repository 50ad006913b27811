//! The controller's events about an app (releases, scaling, domains, collaborators, failed
//! deploys) as log lines `{app}[deis-controller]: ...`, pushed to the logger in batches. While
//! no logger answers they wait (up to [`BACKLOG`] lines; beyond that the oldest go, and how many
//! is logged), so a logger restart loses none.

use std::collections::VecDeque;
use std::sync::Arc;

use deis_proto::logger::v1::{LogEntry, PushRequest};
use deis_store::ConfigStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Lines kept while the logger is away.
const BACKLOG: usize = 10_000;

/// Where events are sent from.
#[derive(Clone)]
pub(crate) struct Events {
    tx: mpsc::UnboundedSender<LogEntry>,
}

impl Events {
    /// The sender, and the task (on `tasks`) that ships its lines until `shutdown`.
    pub(crate) fn start(
        store: Arc<dyn ConfigStore>,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn(ship(rx, store, shutdown));
        Events { tx }
    }

    /// Records `message` about `app`.
    pub(crate) fn emit(&self, app: &str, message: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = self.tx.send(LogEntry {
            app: app.to_owned(),
            source: "deis-controller".to_owned(),
            time: Some(prost_types::Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
            }),
            message: message.to_owned(),
            offset: 0,
        });
    }
}

async fn ship(
    mut rx: mpsc::UnboundedReceiver<LogEntry>,
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
) {
    let shipper = format!("deis-controller-{}", crate::time::new_uuid());
    let mut pusher = deis_runtime::LogPusher::new(store, None);
    let mut sequence = 0u64;
    let mut pending: VecDeque<LogEntry> = VecDeque::new();
    // The batch being delivered keeps its sequence until the logger acknowledges it, so a
    // retry after a lost answer is recognised and not stored twice.
    let mut in_flight: Option<(u64, Vec<LogEntry>)> = None;
    let mut lost = 0usize;
    loop {
        if pending.is_empty() && in_flight.is_none() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                next = rx.recv() => match next {
                    Some(e) => pending.push_back(e),
                    None => return,
                },
            }
        }
        while let Ok(e) = rx.try_recv() {
            pending.push_back(e);
        }
        while pending.len() > BACKLOG {
            pending.pop_front();
            lost += 1;
        }
        if lost > 0 {
            tracing::warn!(
                lines = lost,
                "The logger was away too long; oldest controller events not kept"
            );
            lost = 0;
        }
        let (batch_sequence, batch) = match in_flight.take() {
            Some(batch) => batch,
            None => {
                let n = pending.len().min(1000);
                sequence += 1;
                (sequence, pending.drain(..n).collect())
            }
        };
        let sent = pusher
            .try_push(PushRequest {
                shipper: shipper.clone(),
                sequence: batch_sequence,
                entries: batch.clone(),
            })
            .await;
        if sent.is_err() {
            // Kept, and lines that arrive meanwhile are bounded above, before the next try.
            in_flight = Some((batch_sequence, batch));
            if !pusher.back_off(&shutdown).await {
                return;
            }
        }
    }
}
