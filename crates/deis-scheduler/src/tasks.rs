//! The tasks a backend starts besides its callers' requests (supervisors, restarts, lease
//! keep-alives, retiring old containers, removing one-off containers): tracked, so that the
//! controller waits for them after shutdown instead of leaving them half done.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a backend's tasks are started, and the shutdown they all watch.
#[derive(Clone)]
pub(crate) struct Tasks {
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

impl Tasks {
    pub(crate) fn new(shutdown: CancellationToken) -> Tasks {
        Tasks {
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Starts `task`, tracked.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Waits until every task started has ended (they end soon after shutdown).
    pub(crate) async fn drain(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
