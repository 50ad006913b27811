//! Where lines are kept: in this process ([`Logs`], single host) or in Redis ([`RedisStore`],
//! shared by logger replicas). Both count every line in [`Metrics`].

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::entry::Entry;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::redis_store::RedisStore;

/// Redis failed a call; lines pushed meanwhile were not stored.
#[derive(Debug, thiserror::Error)]
#[error("Redis ({what} {app}): {source}")]
pub(crate) struct BackendError {
    /// What was being done (`tail of`).
    what: &'static str,
    app: String,
    #[source]
    source: redis::RedisError,
}

impl BackendError {
    fn redis(what: &'static str, app: &str) -> impl FnOnce(redis::RedisError) -> BackendError {
        let app = app.to_owned();
        move |source| BackendError { what, app, source }
    }
}

/// The log store in use.
#[derive(Clone)]
pub(crate) enum Backend {
    /// In memory.
    Memory(Arc<Logs>),
    /// In Redis.
    Redis(RedisStore, Arc<Metrics>),
}

/// New lines for a follower.
pub(crate) enum Live {
    Memory(broadcast::Receiver<Entry>),
    Redis(mpsc::Receiver<Entry>),
}

/// What a follower receives next.
pub(crate) enum Next {
    Line(Entry),
    /// This many lines went by while the follower was too slow.
    Skipped(u64),
    End,
}

impl Live {
    pub(crate) async fn next(&mut self) -> Next {
        match self {
            Live::Memory(rx) => match rx.recv().await {
                Ok(e) => Next::Line(e),
                Err(broadcast::error::RecvError::Lagged(n)) => Next::Skipped(n),
                Err(broadcast::error::RecvError::Closed) => Next::End,
            },
            Live::Redis(rx) => match rx.recv().await {
                Some(e) => Next::Line(e),
                None => Next::End,
            },
        }
    }
}

impl Backend {
    /// Stores lines from syslog (no batch identity).
    pub(crate) async fn append(&self, entries: Vec<Entry>) -> u32 {
        self.push("", 0, entries).await.unwrap_or_default()
    }

    /// Stores a shipper's batch once.
    pub(crate) async fn push(
        &self,
        shipper: &str,
        sequence: u64,
        entries: Vec<Entry>,
    ) -> Result<u32, BackendError> {
        match self {
            Backend::Memory(logs) => Ok(logs.push(shipper, sequence, entries)),
            Backend::Redis(redis, metrics) => {
                for e in &entries {
                    metrics.received(&e.app);
                }
                match redis.push(shipper, sequence, &entries).await {
                    Ok(stored) => {
                        if stored > 0 {
                            for e in &entries {
                                metrics.stored(&e.app);
                            }
                        }
                        Ok(stored)
                    }
                    Err(source) => {
                        if shipper.is_empty() {
                            // Syslog senders do not retry: these lines are lost, and counted.
                            for e in &entries {
                                metrics.dropped(&e.app);
                            }
                        }
                        tracing::warn!(error = %source, "Storing lines in Redis failed");
                        Err(BackendError::redis("push from", shipper)(source))
                    }
                }
            }
        }
    }

    pub(crate) async fn tail(&self, app: &str, n: usize) -> Result<Vec<Entry>, BackendError> {
        match self {
            Backend::Memory(logs) => Ok(logs.tail(app, n)),
            Backend::Redis(redis, _) => redis
                .tail(app, n)
                .await
                .map_err(BackendError::redis("tail of", app)),
        }
    }

    pub(crate) async fn follow(
        &self,
        app: &str,
        n: usize,
    ) -> Result<(Vec<Entry>, Live), BackendError> {
        match self {
            Backend::Memory(logs) => {
                let (tail, rx) = logs.follow(app, n);
                Ok((tail, Live::Memory(rx)))
            }
            Backend::Redis(redis, _) => {
                let (tail, rx) = redis
                    .follow(app, n)
                    .await
                    .map_err(BackendError::redis("follow of", app))?;
                Ok((tail, Live::Redis(rx)))
            }
        }
    }

    pub(crate) async fn delete(&self, app: &str) -> Result<(), BackendError> {
        match self {
            Backend::Memory(logs) => {
                logs.delete(app);
                Ok(())
            }
            Backend::Redis(redis, _) => redis
                .delete(app)
                .await
                .map_err(BackendError::redis("delete of", app)),
        }
    }
}

impl From<BackendError> for tonic::Status {
    fn from(e: BackendError) -> Self {
        tonic::Status::unavailable(e.to_string())
    }
}
