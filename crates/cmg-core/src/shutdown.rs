//! The shutdown handle a role's `run` takes: a cancellation token to stop accepting and
//! a task tracker to drain in-flight work, bounded by a grace period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cloneable shutdown handle: `token` says "stop", `tracker` counts what must drain.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    pub tracker: TaskTracker,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every tracked task finished within the grace period.
    Clean,
    /// The grace period passed with tasks still running; `remaining` of them.
    TimedOut { remaining: usize },
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle whose token is a child of this one (cancelled with it, or alone) and
    /// which tracks its own tasks.
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
            tracker: TaskTracker::new(),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown is requested.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Requests shutdown, then waits up to `grace` for tracked tasks to finish.
    pub async fn drain(&self, grace: Duration) -> Drain {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Drain::Clean,
            Err(_) => Drain::TimedOut {
                remaining: self.tracker.len(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_then_times_out() {
        let s = Shutdown::new();
        let t = s.token.clone();
        s.tracker.spawn(async move { t.cancelled().await });
        assert_eq!(s.drain(Duration::from_secs(1)).await, Drain::Clean);

        let s = Shutdown::new();
        s.tracker
            .spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
        assert_eq!(
            s.drain(Duration::from_secs(1)).await,
            Drain::TimedOut { remaining: 1 }
        );
    }
}
