//! A worker's idle connections to backends, for the fast path: taken most recent first, each
//! checked for a close by the backend before it is used again; at most [`MAX_IDLE`] per backend,
//! none kept past [`IDLE_TIMEOUT`]. Only the worker's own tasks use them, so the lock is never
//! contended.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Idle connections kept per backend and worker (nginx's `keepalive` in the bench: 512).
const MAX_IDLE: usize = 1024;
/// How long a connection may stay idle (hyper's pool: 90 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection is taken without a check (backends close idle connections after
/// seconds at the least: Node.js after 5).
const FRESH: Duration = Duration::from_secs(1);
/// How often idle connections are swept for those expired or closed.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// A connection to a backend and what it read past the last response.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    idle_since: Instant,
}

impl Upstream {
    /// Connects to `backend` (`host:port`) within `timeout`.
    pub(crate) async fn connect(backend: &str, timeout: Duration) -> std::io::Result<Upstream> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(backend))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Ok(Upstream {
            stream,
            buf: BytesMut::new(),
            idle_since: Instant::now(),
        })
    }

    /// Whether the backend may still take a request on it: not closed, nothing unasked for
    /// sent, not idle too long.
    fn usable(&self, now: Instant, check: bool) -> bool {
        let idle = now.duration_since(self.idle_since);
        if !self.buf.is_empty() || idle > IDLE_TIMEOUT {
            return false;
        }
        if !check && idle < FRESH {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// One worker's idle backend connections.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    by_backend: HashMap<String, Vec<Upstream>>,
    swept: Option<Instant>,
}

impl Pool {
    /// An idle connection to `backend` that can be used, if any; `check` checks it for a close
    /// by the backend however fresh it is.
    pub(crate) fn take(&self, backend: &str, check: bool) -> Option<Upstream> {
        let now = Instant::now();
        let mut idle = self.lock();
        let list = idle.by_backend.get_mut(backend)?;
        while let Some(upstream) = list.pop() {
            if upstream.usable(now, check) {
                return Some(upstream);
            }
        }
        None
    }

    /// Keeps `upstream` for the next request to `backend`.
    pub(crate) fn put(&self, backend: &str, mut upstream: Upstream) {
        let now = Instant::now();
        upstream.idle_since = now;
        if upstream.buf.is_empty() {
            // An idle connection holds no buffer.
            upstream.buf = BytesMut::new();
        }
        let mut idle = self.lock();
        if idle
            .swept
            .is_none_or(|t| now.duration_since(t) > SWEEP_EVERY)
        {
            idle.swept = Some(now);
            idle.by_backend.retain(|_, list| {
                list.retain(|u| u.usable(now, true));
                !list.is_empty()
            });
        }
        match idle.by_backend.get_mut(backend) {
            Some(list) if list.len() < MAX_IDLE => list.push(upstream),
            Some(_) => {}
            None => {
                idle.by_backend.insert(backend.to_owned(), vec![upstream]);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
