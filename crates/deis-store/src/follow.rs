//! Following a prefix: list it, then watch from the listing's revision, and list again whenever
//! the watch reports a compaction or breaks. Every component that keeps a copy of part of the
//! store (the router's table, the builder's forgetting of destroyed apps) runs this loop; it is
//! written once here, on [`ConfigStore`], so it works on both backends.
//!
//! [`Follower::next`] gives [`Update::Listed`] first and after every relist (what the caller
//! holds is replaced), and [`Update::Changed`] in between (every change since, in revision order,
//! each once). A compaction relists at once; any other failure is logged and retried with
//! back-off (0.1 s doubling to 5 s). It ends only at shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{ConfigStore, Event, Listing, StoreError, WatchStream};

const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What a [`Follower`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Every key under the prefix at one revision: replaces whatever was held before.
    Listed(Listing),
    /// The changes since the last update, in revision order: at least one, and as many more as
    /// had already arrived, so a burst is applied at once.
    Changed(Vec<Event>),
}

/// Follows every key under a prefix until shutdown.
pub struct Follower {
    store: Arc<dyn ConfigStore>,
    prefix: String,
    shutdown: CancellationToken,
    /// The watch after the last listing; `None`: list (again) first.
    events: Option<WatchStream>,
    /// How long to wait before the next listing, if the last attempt failed.
    wait: Option<Duration>,
    retry: Duration,
}

impl Follower {
    /// A follower of `prefix` on `store`; nothing is read before the first [`Follower::next`].
    pub fn new(
        store: Arc<dyn ConfigStore>,
        prefix: impl Into<String>,
        shutdown: CancellationToken,
    ) -> Self {
        Follower {
            store,
            prefix: prefix.into(),
            shutdown,
            events: None,
            wait: None,
            retry: RETRY_FIRST,
        }
    }

    /// The next update, or `None` once `shutdown` is cancelled.
    pub async fn next(&mut self) -> Option<Update> {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            update = self.advance() => Some(update),
        }
    }

    /// Lists or waits for changes until there is something to deliver. Cancel-safe: dropped
    /// half-way, the next call lists again or goes on watching.
    async fn advance(&mut self) -> Update {
        loop {
            let Some(events) = self.events.as_mut() else {
                if let Some(wait) = self.wait.take() {
                    tokio::time::sleep(wait).await;
                }
                match self.start().await {
                    Ok(listing) => return Update::Listed(listing),
                    Err(e) => self.broke(Some(e)),
                }
                continue;
            };
            let mut batch = Vec::new();
            let mut next = events.next().await;
            let broken = loop {
                match next {
                    Some(Ok(event)) => batch.push(event),
                    Some(Err(e)) => break Some(Some(e)),
                    None => break Some(None),
                }
                match events.next().now_or_never() {
                    Some(more) => next = more,
                    None => break None,
                }
            };
            if let Some(error) = broken {
                self.broke(error);
            }
            if !batch.is_empty() {
                return Update::Changed(batch);
            }
        }
    }

    async fn start(&mut self) -> Result<Listing, StoreError> {
        let listing = self.store.list(&self.prefix).await?;
        self.events = Some(self.store.watch(&self.prefix, listing.revision + 1).await?);
        self.retry = RETRY_FIRST;
        Ok(listing)
    }

    /// The watch failed with `error` (`None`: it ended): list again, at once after a compaction.
    fn broke(&mut self, error: Option<StoreError>) {
        self.events = None;
        match error {
            Some(e @ StoreError::Compacted { .. }) => {
                tracing::info!(store.prefix = %self.prefix, error = %e, "The watch fell behind a compaction; listing again");
            }
            error => {
                let error = error.map_or_else(|| "the watch ended".to_owned(), |e| e.to_string());
                tracing::warn!(store.prefix = %self.prefix, %error, retry.after = ?self.retry, "Following the config store failed; listing again");
                self.wait = Some(self.retry);
                self.retry = (self.retry * 2).min(RETRY_MAX);
            }
        }
    }
}
