//! Keeping desired containers alive. The engine's own restart policy is off: this supervisor
//! follows the engine's `die` events, withdraws the dead container's route at once (no traffic
//! to a dead container), and starts it again. A container that had become healthy (a web
//! container that passed its health check, or any container that ran for 10 s) is restarted
//! immediately; one that dies again before that (a crash loop) waits 0.5 s, 1 s, 2 s, ... up to
//! a minute. The route comes back once the container is healthy again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use deis_types::ContainerName;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Inner;

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// A container that ran this long counts as healthy, whatever its type.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What the supervisor knows of the containers it keeps.
#[derive(Default)]
pub(crate) struct Book {
    /// Desired containers by app.
    desired: HashMap<String, HashSet<String>>,
    /// Containers being stopped or restarted on purpose: their deaths are expected.
    stopping: HashSet<String>,
    /// Restart bookkeeping by container.
    health: HashMap<String, Health>,
}

#[derive(Default, Clone, Copy)]
struct Health {
    restarts: u32,
    /// Deaths since the container was last healthy.
    failures: u32,
    healthy: bool,
    started: Option<Instant>,
}

impl Book {
    pub(crate) fn set_desired(&mut self, app: &str, names: HashSet<String>) {
        self.health
            .retain(|n, _| names.contains(n) || !n.starts_with(&format!("{app}_")));
        self.desired.insert(app.to_owned(), names);
    }

    /// Adds containers to an app's desired set (before they start, so that a death during the
    /// start is caught).
    pub(crate) fn add_desired(&mut self, app: &str, names: impl IntoIterator<Item = String>) {
        self.desired
            .entry(app.to_owned())
            .or_default()
            .extend(names);
    }

    /// Removes containers from an app's desired set.
    pub(crate) fn remove_desired(&mut self, app: &str, names: &[String]) {
        if let Some(set) = self.desired.get_mut(app) {
            for n in names {
                set.remove(n);
            }
        }
    }

    pub(crate) fn forget_app(&mut self, app: &str) {
        self.desired.remove(app);
        self.health
            .retain(|n, _| !n.starts_with(&format!("{app}_")));
    }

    fn is_desired(&self, name: &str) -> bool {
        self.desired.values().any(|names| names.contains(name))
    }

    pub(crate) fn stopping(&mut self, name: &str, on: bool) {
        if on {
            self.stopping.insert(name.to_owned());
        } else {
            self.stopping.remove(name);
        }
    }

    pub(crate) fn mark_healthy(&mut self, name: &str) {
        let h = self.health.entry(name.to_owned()).or_default();
        h.healthy = true;
        h.failures = 0;
    }

    /// Notes that a container was (re)started now.
    pub(crate) fn mark_started(&mut self, name: &str) {
        let h = self.health.entry(name.to_owned()).or_default();
        h.started = Some(Instant::now());
        h.healthy = false;
    }

    pub(crate) fn restarts(&self, name: &str) -> u32 {
        self.health.get(name).map_or(0, |h| h.restarts)
    }

    /// Records a death; the delay before the restart, or `None` to leave the container dead.
    fn died(&mut self, name: &str) -> Option<Duration> {
        if self.stopping.contains(name) || !self.is_desired(name) {
            return None;
        }
        let h = self.health.entry(name.to_owned()).or_default();
        h.restarts += 1;
        let stable = h.started.is_some_and(|t| t.elapsed() >= STABLE_AFTER);
        let delay = if h.healthy || stable {
            h.failures = 0;
            Duration::ZERO
        } else {
            h.failures += 1;
            let exp = h.failures.saturating_sub(1).min(16);
            BACKOFF_FIRST.saturating_mul(1 << exp).min(BACKOFF_CAP)
        };
        h.healthy = false;
        Some(delay)
    }
}

pub(crate) fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}

/// Follows engine `engine`'s events until shutdown, reconnecting when the stream breaks.
pub(crate) async fn supervise(inner: Arc<Inner>, engine: usize, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("event".to_owned(), vec!["die".to_owned()]),
            (
                "label".to_owned(),
                vec![
                    deis_docker::labels::APP.to_owned(),
                    deis_docker::labels::filter(deis_docker::labels::ENGINE, &engine.to_string()),
                ],
            ),
        ]);
        let mut events = inner
            .engine(engine)
            .docker()
            .events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else { break };
            let name = event
                .actor
                .and_then(|a| a.attributes)
                .and_then(|mut attrs| attrs.remove("name"));
            if let Some(name) = name {
                let delay = lock(&inner.book).died(&name);
                if let Some(delay) = delay {
                    inner
                        .tasks
                        .spawn(revive(inner.clone(), engine, name, delay, shutdown.clone()));
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Withdraws a dead container's route, waits `delay`, starts it again and, once healthy,
/// publishes its route.
async fn revive(
    inner: Arc<Inner>,
    engine: usize,
    name: String,
    delay: Duration,
    shutdown: CancellationToken,
) {
    let Ok(parsed) = name.parse::<ContainerName>() else {
        return;
    };
    let traffic = super::serves_traffic(&parsed);
    if traffic && let Err(e) = inner.routes.withdraw(&parsed).await {
        tracing::warn!(container = %name, error = %e, "Withdrawing a dead container's route failed");
    }
    tracing::info!(container = %name, delay.ms = delay.as_millis() as u64, "Container died; restarting it");
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(delay) => {}
    }
    if !lock(&inner.book).is_desired(&name) {
        return;
    }
    lock(&inner.book).mark_started(&name);
    match inner
        .start_and_check(inner.engine(engine), &parsed, &name)
        .await
    {
        Ok(route) => {
            if traffic {
                lock(&inner.book).mark_healthy(&name);
            }
            if let (true, Some(route)) = (traffic, route)
                && let Err(e) = inner.routes.publish(&parsed, &route).await
            {
                tracing::warn!(container = %name, error = %e, "Publishing a revived container's route failed");
            }
        }
        Err(e) => tracing::warn!(container = %name, error = %e, "Restarting a container failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_deaths_restart_at_once_and_crash_loops_back_off() {
        let mut book = Book::default();
        book.set_desired("a", HashSet::from(["a_v1.web.1".to_owned()]));
        book.mark_healthy("a_v1.web.1");
        assert_eq!(book.died("a_v1.web.1"), Some(Duration::ZERO));
        assert_eq!(book.died("a_v1.web.1"), Some(Duration::from_millis(500)));
        assert_eq!(book.died("a_v1.web.1"), Some(Duration::from_secs(1)));
        assert_eq!(book.died("a_v1.web.1"), Some(Duration::from_secs(2)));
        for _ in 0..20 {
            book.died("a_v1.web.1");
        }
        assert_eq!(book.died("a_v1.web.1"), Some(BACKOFF_CAP));
        assert_eq!(book.restarts("a_v1.web.1"), 25);
        book.mark_healthy("a_v1.web.1");
        assert_eq!(book.died("a_v1.web.1"), Some(Duration::ZERO));
        book.stopping("a_v1.web.1", true);
        assert_eq!(book.died("a_v1.web.1"), None, "a stop we asked for");
        assert_eq!(book.died("b_v1.web.1"), None, "not ours to keep");
    }
}
