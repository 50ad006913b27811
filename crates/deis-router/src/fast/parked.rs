//! Plain client connections idle for a while, parked: out of the runtime, with no task, no
//! buffer and no registration of their own, in one epoll set per worker (as nginx keeps an
//! idle keep-alive connection as little more than its socket). A parked connection costs its
//! entry here (its socket, its peer's address, since when it is idle) and the kernel's.
//!
//! The worker's sweeper asks a connection idle for [`PARK_AFTER`] to park ([`super::idle`]);
//! its task takes the socket out of the runtime, puts it here and ends. When the socket becomes
//! readable (a request, or the client closing it) it goes back through the worker's queue of
//! accepted connections and is served as a new one. The sweeper closes parked connections idle
//! past the idle timeout; shutdown closes them all.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use mio::{Events, Interest, Poll, Registry, Token};
use prometheus_client::metrics::gauge::Gauge;
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::WeakUnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a connection waits for its next request before it is parked.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(500);
/// Readiness events taken from the set at once.
const EVENTS: usize = 256;

/// The worker's queue of accepted connections, which parked ones go back to.
pub(crate) type Queue = WeakUnboundedSender<(std::net::TcpStream, SocketAddr)>;

struct Parked {
    stream: mio::net::TcpStream,
    peer: SocketAddr,
    since: Instant,
}

struct Set {
    /// Where connections are added to the set (its poll belongs to [`serve`]).
    registry: Registry,
    conns: Slab<Parked>,
    queue: Queue,
    /// How many are parked, on the router's metrics.
    gauge: Gauge,
}

thread_local! {
    /// This worker's parked connections, while its [`serve`] runs (plain HTTP workers only).
    static PARKED: RefCell<Option<Set>> = const { RefCell::new(None) };
}

/// Parks `stream` (idle since `since`); gives it back if this worker parks nothing.
pub(crate) fn park(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    since: Instant,
) -> Option<std::net::TcpStream> {
    PARKED.with_borrow_mut(|set| {
        let Some(set) = set else {
            return Some(stream);
        };
        let entry = set.conns.vacant_entry();
        let mut stream = mio::net::TcpStream::from_std(stream);
        // Registering a socket that is readable already reports it at once: nothing is missed.
        match set
            .registry
            .register(&mut stream, Token(entry.key()), Interest::READABLE)
        {
            Ok(()) => {
                entry.insert(Parked {
                    stream,
                    peer,
                    since,
                });
                set.gauge.inc();
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "Parking a connection failed; it stays as it is");
                Some(stream.into())
            }
        }
    })
}

/// Whether this thread parks connections.
pub(crate) fn parks() -> bool {
    PARKED.with_borrow(Option::is_some)
}

/// Closes the parked connections idle for `timeout` or longer.
pub(crate) fn expire(now: Instant, timeout: Duration) {
    PARKED.with_borrow_mut(|set| {
        if let Some(set) = set {
            let before = set.conns.len();
            set.conns
                .retain(|_, p| now.saturating_duration_since(p.since) < timeout);
            set.gauge.dec_by(gauge_value(before - set.conns.len()));
        }
    });
}

/// Keeps this worker's parked connections until `shutdown`, sending those that become
/// readable back to `queue`; then closes the rest.
pub(crate) async fn serve(queue: Queue, gauge: Gauge, shutdown: CancellationToken) {
    let set = Poll::new().and_then(|poll| {
        let registry = poll.registry().try_clone()?;
        // The runtime watches the set's descriptor. `with_interest` is deprecated because a
        // type could hand it a descriptor it does not own; this one owns it (the poll, kept
        // in the `AsyncFd` until it is dropped), the condition `register_with_interest` asks
        // under `unsafe`, which this workspace forbids.
        #[allow(deprecated)]
        let ready = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        Ok((ready, registry))
    });
    let (mut ready, registry) = match set {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "No epoll set for idle connections; none are parked");
            return;
        }
    };
    PARKED.set(Some(Set {
        registry,
        conns: Slab::new(),
        queue,
        gauge,
    }));
    let mut events = Events::with_capacity(EVENTS);
    loop {
        let guard = tokio::select! {
            guard = ready.readable_mut() => guard,
            () = shutdown.cancelled() => break,
        };
        let Ok(mut guard) = guard else {
            break;
        };
        // Until a poll leaves no events behind, then wait for the set's next event.
        while unpark(guard.get_inner_mut(), &mut events) == EVENTS {}
        guard.clear_ready();
    }
    // Closing the set's entries closes the connections.
    if let Some(set) = PARKED.take() {
        set.gauge.dec_by(gauge_value(set.conns.len()));
    }
    drop(ready);
}

/// Sends the parked connections that became readable back to the worker; how many events
/// the poll gave.
fn unpark(poll: &mut Poll, events: &mut Events) -> usize {
    if poll.poll(events, Some(Duration::ZERO)).is_err() {
        return 0;
    }
    PARKED.with_borrow_mut(|set| {
        let Some(set) = set else {
            return 0;
        };
        let mut n = 0;
        for event in events.iter() {
            n += 1;
            let Some(mut parked) = set.conns.try_remove(event.token().0) else {
                continue;
            };
            let _ = set.registry.deregister(&mut parked.stream);
            set.gauge.dec();
            if let Some(queue) = set.queue.upgrade() {
                let _ = queue.send((parked.stream.into(), parked.peer));
            }
        }
        n
    })
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
