//! The TCP pass-through to the builder (Deis v1 §13.1, item 6): in a cluster every host's router
//! listens on 2222 and relays each connection, byte for byte, to the builder that
//! `/deis/builder/{host,port}` names (the builder itself then listens on 2223), so `git push`
//! works through any host's name. The router does not look into the SSH stream.
//!
//! The builder's address is the current routing table's at the moment a connection is
//! accepted: when the builder moves, new connections go to the new one at once while those
//! already relayed stay with the old one. With no builder registered, or one that refuses or
//! does not answer within `builder/timeout/connect`, the client's connection is closed at once.
//! Each connection is bounded: at most `max_connections` are relayed at once (the rest are
//! closed as soon as they are accepted), and one that passes no byte either way for
//! `builder/timeout/tcp` is closed. Half-closes pass through: the client's end of input shuts
//! down the sending side towards the builder and the other way round, so git's protocol
//! finishes cleanly. On shutdown the listener closes and the connections being relayed get the
//! drain period to finish; then they are closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::table::Table;

/// The size of each direction's copy buffer.
const BUFFER: usize = 32 * 1024;

/// Accepts connections on `listener` and relays each to the builder of the current table until
/// `shutdown`; then lets those open finish within `drain` and closes the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    tables: watch::Receiver<Arc<Table>>,
    metrics: Arc<Metrics>,
    max_connections: usize,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(listen.addr = %local, max_connections, "Relaying git push to the builder");
    let slots = Arc::new(Semaphore::new(max_connections));
    let tasks = TaskTracker::new();
    let cut = CancellationToken::new();
    loop {
        let (client, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: give the open connections time to
                    // close some before trying again.
                    tracing::warn!(error = %e, "Accepting a git push connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                client = %peer,
                max_connections,
                "Too many git push connections; closing this one"
            );
            metrics.builder_connection("over_limit");
            drop(client);
            continue;
        };
        let table = tables.borrow().clone();
        let span = tracing::info_span!("git_push", client = %peer);
        let relay = relay(client, table, metrics.clone(), cut.clone());
        tasks.spawn(
            async move {
                relay.await;
                drop(slot);
            }
            .instrument(span),
        );
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(drain, tasks.wait()).await.is_err() {
        tracing::warn!(
            drain.secs = drain.as_secs(),
            connections = tasks.len(),
            "git push connections still open after the drain period; closing them"
        );
        cut.cancel();
        tasks.wait().await;
    }
    Ok(())
}

/// Relays one client connection to the builder `table` names, until both sides are done, the
/// connection is idle too long or `cut` says to stop.
async fn relay(
    client: TcpStream,
    table: Arc<Table>,
    metrics: Arc<Metrics>,
    cut: CancellationToken,
) {
    let Some(builder) = table.builder.as_deref() else {
        tracing::warn!(
            "No builder is registered (/deis/builder/host and port); closing the git push connection"
        );
        metrics.builder_connection("no_builder");
        return;
    };
    let settings = &table.settings;
    let connect = tokio::time::timeout(
        settings.builder_connect_timeout,
        TcpStream::connect(builder),
    );
    let server = tokio::select! {
        connected = connect => connected,
        () = cut.cancelled() => return,
    };
    let server = match server {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => {
            tracing::warn!(builder, error = %e, "Connecting to the builder failed; closing the git push connection");
            metrics.builder_connection("connect_failed");
            return;
        }
        Err(_) => {
            tracing::warn!(
                builder,
                timeout_ms = settings.builder_connect_timeout.as_millis(),
                "The builder did not accept the connection in time; closing the git push connection"
            );
            metrics.builder_connection("connect_failed");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    metrics.builder_connection("relayed");
    metrics.builder_open.inc();
    tracing::debug!(builder, "Relaying to the builder");
    let flows = Flows {
        to_builder: Flow::new(metrics.builder_bytes("to_builder")),
        from_builder: Flow::new(metrics.builder_bytes("from_builder")),
        activity: Activity::new(),
    };
    let ended = flows
        .run(client, server, settings.builder_idle_timeout, &cut)
        .await;
    metrics.builder_open.dec();
    tracing::info!(
        builder,
        bytes.to_builder = flows.to_builder.bytes.load(Ordering::Relaxed),
        bytes.from_builder = flows.from_builder.bytes.load(Ordering::Relaxed),
        duration_ms = flows.activity.start.elapsed().as_millis(),
        ended,
        "git push connection relayed"
    );
}

/// Both directions of one relayed connection.
struct Flows {
    to_builder: Flow,
    from_builder: Flow,
    activity: Activity,
}

impl Flows {
    /// Copies both ways until both sides have closed (`closed`), one fails (`error`), nothing
    /// passes for `idle` (`idle`) or `cut` (`shutdown`); says which.
    async fn run(
        &self,
        client: TcpStream,
        server: TcpStream,
        idle: Duration,
        cut: &CancellationToken,
    ) -> &'static str {
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let both = async {
            tokio::try_join!(
                self.to_builder
                    .copy(client_read, server_write, &self.activity),
                self.from_builder
                    .copy(server_read, client_write, &self.activity),
            )
        };
        tokio::select! {
            done = both => match done {
                Ok(_) => "closed",
                Err(e) => {
                    tracing::debug!(error = %e, "A git push connection failed");
                    "error"
                }
            },
            () = self.activity.idle(idle) => "idle",
            () = cut.cancelled() => "shutdown",
        }
    }
}

/// One direction: the bytes it passed, also counted in the metrics.
struct Flow {
    bytes: AtomicU64,
    counter: Counter,
}

impl Flow {
    fn new(counter: Counter) -> Flow {
        Flow {
            bytes: AtomicU64::new(0),
            counter,
        }
    }

    /// Copies `from` to `to` until `from` ends, then shuts down `to`'s sending side (the
    /// half-close passed on).
    async fn copy(
        &self,
        mut from: OwnedReadHalf,
        mut to: OwnedWriteHalf,
        activity: &Activity,
    ) -> std::io::Result<()> {
        let mut buffer = vec![0; BUFFER];
        loop {
            let n = from.read(&mut buffer).await?;
            if n == 0 {
                return to.shutdown().await;
            }
            activity.touch();
            to.write_all(&buffer[..n]).await?;
            activity.touch();
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.counter.inc_by(n as u64);
        }
    }
}

/// When a byte last passed either way.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing has passed for `limit`.
    async fn idle(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}
