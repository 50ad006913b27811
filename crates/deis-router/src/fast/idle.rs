//! Client connections waiting for a request head, watched by one sweeper per worker instead of
//! a timer and a shutdown listener in every connection's future (those two were a third of an
//! idle connection's task; 10,000 idle keep-alive connections are mostly that).
//!
//! Each connection task has an entry in its worker's table for as long as it lives ([`Watch`]):
//! it says when it starts waiting for a head, whether anything of that head has arrived, and
//! when the head is in. Once a second the sweeper aborts the tasks that have waited for a head
//! longer than the idle timeout (whole heads, so a client sending a byte now and then is cut
//! too) and, once the worker shuts down, those waiting with nothing read: their next request
//! never began. Aborting drops the task's future, which closes the socket.
//!
//! A plain connection waiting with nothing read for [`parked::PARK_AFTER`] is asked to park
//! ([`parked`]): its task ends, and its socket waits in the worker's epoll set.
//!
//! The table is thread-local: a worker's connections and its sweeper run on its one thread.
//!
//! After a busy spell that ended [`TRIM_AFTER`] connection tasks or more (a burst of
//! connections gone idle and parked, or closed), the first sweep that finds no task started or
//! ended since the one before has the allocator give this thread's freed memory back to the
//! system ([`Trim`]): an allocator returns pages only as it allocates again on that thread, and
//! a worker whose connections all sit parked hardly allocates. Under steady traffic tasks start
//! between every two sweeps, and this never runs.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use slab::Slab;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::parked;

/// How often the sweeper looks, at most.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// How many connection tasks must have ended since memory was last given back.
const TRIM_AFTER: u64 = 1024;

/// A connection task and what it waits for.
struct Entry {
    task: Option<AbortHandle>,
    /// Since when it waits for a head, and whether nothing of it was read yet.
    waiting: Option<(Instant, bool)>,
    /// The task to wake when it is asked to park, if it can park.
    parkable: Option<Waker>,
    /// Whether it is asked to park.
    park: bool,
}

thread_local! {
    static CONNECTIONS: RefCell<Slab<Entry>> = const { RefCell::new(Slab::new()) };
    /// Connection tasks this thread has started.
    static STARTED: Cell<u64> = const { Cell::new(0) };
}

/// A connection task's entry in its worker's table; removed when dropped, that is when the
/// task ends or is aborted.
pub(crate) struct Watch(usize);

impl Watch {
    /// An entry for a connection about to be spawned; [`Watch::attach`] names its task.
    pub(crate) fn new() -> Watch {
        STARTED.set(STARTED.get() + 1);
        Watch(CONNECTIONS.with_borrow_mut(|table| {
            table.insert(Entry {
                task: None,
                waiting: None,
                parkable: None,
                park: false,
            })
        }))
    }

    /// Says which task serves the connection (before the task first runs: the worker is
    /// single-threaded).
    pub(crate) fn attach(key: usize, task: AbortHandle) {
        CONNECTIONS.with_borrow_mut(|table| {
            if let Some(entry) = table.get_mut(key) {
                entry.task = Some(task);
            }
        });
    }

    /// The key that [`Watch::attach`] takes.
    pub(crate) fn key(&self) -> usize {
        self.0
    }

    /// The connection waits for (more of) a head; `nothing_read` if none of it has arrived.
    /// The wait counts from the first call until [`Watch::head_in`].
    pub(crate) fn waiting(&self, nothing_read: bool) {
        CONNECTIONS.with_borrow_mut(|table| {
            if let Some(entry) = table.get_mut(self.0) {
                let since = entry.waiting.map_or_else(Instant::now, |(since, _)| since);
                entry.waiting = Some((since, nothing_read));
            }
        });
    }

    /// A whole head arrived (or the connection goes on another way): no longer waiting.
    pub(crate) fn head_in(&self) {
        CONNECTIONS.with_borrow_mut(|table| {
            if let Some(entry) = table.get_mut(self.0) {
                entry.waiting = None;
                entry.parkable = None;
                entry.park = false;
            }
        });
    }

    /// Since when the connection waits, if it does.
    pub(crate) fn since(&self) -> Option<Instant> {
        CONNECTIONS.with_borrow(|table| {
            table
                .get(self.0)
                .and_then(|entry| entry.waiting)
                .map(|(since, _)| since)
        })
    }

    /// Completes when the sweeper asks the connection to park (while it waits with nothing
    /// read); awaiting it says the connection can.
    pub(crate) fn park_asked(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_park(cx))
    }

    fn poll_park(&self, cx: &mut Context<'_>) -> Poll<()> {
        CONNECTIONS.with_borrow_mut(|table| match table.get_mut(self.0) {
            Some(entry) if entry.park => Poll::Ready(()),
            Some(entry) => {
                if !entry
                    .parkable
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    entry.parkable = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            None => Poll::Pending,
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The table outlives the worker's runtime, which drops the tasks; `try_` for safety.
        let _ = CONNECTIONS.try_with(|table| {
            if let Ok(mut table) = table.try_borrow_mut() {
                table.try_remove(self.0);
            }
        });
    }
}

/// The worker's sweeper: runs until `shutdown`, then closes the connections waiting with
/// nothing read and returns.
pub(crate) async fn sweep(timeout: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY.min(timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = Trim::default();
    loop {
        let closing = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.cancelled() => true,
        };
        let now = Instant::now();
        let (expired, parking) = due(now, timeout, closing);
        for task in expired {
            task.abort();
        }
        for task in parking {
            task.wake();
        }
        parked::expire(now, timeout);
        if closing {
            return;
        }
        let started = STARTED.get();
        let live = CONNECTIONS.with_borrow(Slab::len) as u64;
        if trim.due(started, started.saturating_sub(live)) {
            CONNECTIONS.with_borrow_mut(Slab::shrink_to_fit);
            give_back_memory();
        }
    }
}

/// Has the allocator return this thread's freed memory to the system (mimalloc, the router's
/// allocator: see main.rs; a no-op for a heap that allocated nothing, as under another global
/// allocator in tests).
#[allow(unsafe_code)]
fn give_back_memory() {
    // SAFETY: `mi_collect` takes no pointer and may be called from any thread at any time; it
    // frees this thread's empty pages and purges what is free.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// When a worker gives memory back: at a sweep that finds no connection task started or
/// ended since the sweep before, once [`TRIM_AFTER`] tasks or more have ended since it last
/// did.
#[derive(Debug, Default)]
struct Trim {
    /// Tasks started and ended as of the last sweep.
    seen: (u64, u64),
    /// Tasks ended as of the last time memory was given back.
    trimmed: u64,
}

impl Trim {
    /// Whether to give memory back, `started` and `ended` being the tasks started and ended on
    /// this thread so far.
    fn due(&mut self, started: u64, ended: u64) -> bool {
        let settled = (started, ended) == self.seen;
        self.seen = (started, ended);
        let due = settled && ended.saturating_sub(self.trimmed) >= TRIM_AFTER;
        if due {
            self.trimmed = ended;
        }
        due
    }
}

/// The tasks to abort now (waiting longer than `timeout`, or with nothing read when `closing`)
/// and those to wake for parking (waiting with nothing read for [`parked::PARK_AFTER`]).
fn due(now: Instant, timeout: Duration, closing: bool) -> (Vec<AbortHandle>, Vec<Waker>) {
    let parks = !closing && parked::parks();
    CONNECTIONS.with_borrow_mut(|table| {
        let (mut expired, mut parking) = (Vec::new(), Vec::new());
        for (_, entry) in table.iter_mut() {
            let Some((since, nothing_read)) = entry.waiting else {
                continue;
            };
            let waited = now.saturating_duration_since(since);
            if (closing && nothing_read) || waited >= timeout {
                expired.extend(entry.task.clone());
            } else if parks
                && nothing_read
                && waited >= parked::PARK_AFTER
                && !entry.park
                && let Some(waker) = entry.parkable.take()
            {
                entry.park = true;
                parking.push(waker);
            }
        }
        (expired, parking)
    })
}

/// How many connection tasks this thread's table holds (for tests).
#[cfg(test)]
fn entries() -> usize {
    CONNECTIONS.with_borrow(Slab::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_given_back_once_a_burst_has_settled_never_under_traffic() {
        let mut trim = Trim::default();
        // A burst: 5000 connections, 3000 of them parked while the others still come.
        assert!(!trim.due(5000, 3000));
        // None started since, but more parking.
        assert!(!trim.due(5000, 4000));
        assert!(!trim.due(5000, 5000));
        // Settled.
        assert!(trim.due(5000, 5000));
        assert!(!trim.due(5000, 5000), "once per burst");
        // Steady traffic: tasks start between every two sweeps, however many end.
        assert!(!trim.due(8000, 7000));
        assert!(!trim.due(11000, 10500));
        assert!(!trim.due(11000, 11000));
        // Then settled.
        assert!(trim.due(11000, 11000));
        // A few connections coming and going never trim.
        assert!(!trim.due(11500, 11500));
        assert!(!trim.due(11500, 11500));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_past_the_timeout_and_idle_ones_at_shutdown_are_aborted() {
        let shutdown = CancellationToken::new();
        let sweeper = tokio::spawn(sweep(Duration::from_secs(30), shutdown.clone()));
        let spawn = |waits: Option<bool>| {
            let watch = Watch::new();
            if let Some(nothing_read) = waits {
                watch.waiting(nothing_read);
            }
            let key = watch.key();
            let task = tokio::spawn(async move {
                let _watch = watch;
                std::future::pending::<()>().await;
            });
            Watch::attach(key, task.abort_handle());
            task
        };
        let busy = spawn(None);
        let idle = spawn(Some(true));
        tokio::time::advance(Duration::from_secs(10)).await;
        let partial = spawn(Some(false));
        tokio::time::advance(Duration::from_secs(21)).await;
        tokio::task::yield_now().await;
        assert!(idle.await.is_err_and(|e| e.is_cancelled()), "30 s idle");
        assert!(!partial.is_finished(), "a head begun 21 s ago goes on");
        assert!(!busy.is_finished(), "a request in flight is not cut");
        let idle = spawn(Some(true));
        shutdown.cancel();
        assert!(sweeper.await.is_ok());
        assert!(
            idle.await.is_err_and(|e| e.is_cancelled()),
            "idle at shutdown"
        );
        assert!(!partial.is_finished(), "partial at shutdown");
        assert!(!busy.is_finished(), "busy at shutdown");
        busy.abort();
        partial.abort();
        let _ = (busy.await, partial.await);
        assert_eq!(entries(), 0, "an ended task leaves no entry");
    }
}
