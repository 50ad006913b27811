//! The one way components push log lines to the logger: a [`LogPusher`] keeps its connection
//! between batches, finds the logger (a fixed URL, or the endpoint the logger publishes in the
//! store) when it has none, drops it when a push fails, and backs off between attempts (100 ms,
//! doubling to 2 s, reset by a success). A batch counts as delivered only once the logger
//! acknowledged it; callers keep it until then.

use std::sync::Arc;
use std::time::Duration;

use deis_proto::logger::v1::PushRequest;
use deis_store::ConfigStore;
use deis_store::keys::Component;
use tokio_util::sync::CancellationToken;

use crate::{Endpoint, LogClient, LogClientError, log_client};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Why a push did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No logger has published its endpoint (it is not running yet).
    #[error("no logger is running (none published its endpoint)")]
    NoLogger,
    /// The logger could not be reached.
    #[error(transparent)]
    Connect(#[from] LogClientError),
    /// The logger refused or failed the push.
    #[error("the logger did not take the lines: {0}")]
    Refused(#[from] tonic::Status),
}

/// Pushes batches to the logger, one connection kept between them.
pub struct LogPusher {
    store: Arc<dyn ConfigStore>,
    url: Option<String>,
    client: Option<LogClient>,
    delay: Duration,
}

impl LogPusher {
    /// A pusher to the logger at `url`, or (when `None`) wherever the logger's endpoint in
    /// `store` says.
    pub fn new(store: Arc<dyn ConfigStore>, url: Option<String>) -> LogPusher {
        LogPusher {
            store,
            url,
            client: None,
            delay: FIRST_DELAY,
        }
    }

    /// One attempt to deliver `request`; the connection is made if there is none and dropped
    /// if the attempt fails.
    pub async fn try_push(&mut self, request: PushRequest) -> Result<(), PushError> {
        let mut client = match self.client.take() {
            Some(client) => client,
            None => self.connect().await?,
        };
        client.push(request).await?;
        self.client = Some(client);
        self.delay = FIRST_DELAY;
        Ok(())
    }

    /// Waits before the next attempt (longer after each failure); false when `shutdown` came
    /// first.
    pub async fn back_off(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Delivers `request`, trying again (with back-off) until the logger acknowledges it;
    /// false when `shutdown` came first.
    pub async fn push(&mut self, request: &PushRequest, shutdown: &CancellationToken) -> bool {
        loop {
            match self.try_push(request.clone()).await {
                Ok(()) => return true,
                Err(e) => tracing::debug!(error = %e, "Log push failed; trying again"),
            }
            if !self.back_off(shutdown).await {
                return false;
            }
        }
    }

    async fn connect(&self) -> Result<LogClient, PushError> {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => Endpoint::lookup(self.store.as_ref(), Component::Logs)
                .await
                .ok_or(PushError::NoLogger)?
                .http_url(),
        };
        Ok(log_client(self.store.as_ref(), url).await?)
    }
}
