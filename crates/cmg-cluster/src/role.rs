//! Each role runs on a tokio runtime of its own, as it would in its own process:
//! stopping it gracefully cancels its shutdown token; killing it drops the runtime,
//! which drops every task and closes every socket at once, as a crashed process would.

use std::future::Future;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// A running role.
#[derive(Debug)]
pub struct RoleRuntime {
    name: String,
    rt: Option<Runtime>,
    shutdown: Shutdown,
    task: Option<JoinHandle<()>>,
}

impl RoleRuntime {
    /// Starts `run(shutdown)` on a new runtime with `threads` workers.
    pub fn start<F, Fut>(name: &str, threads: usize, run: F) -> std::io::Result<Self>
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("cmg-{name}"))
            .enable_all()
            .build()?;
        let shutdown = Shutdown::new();
        let task = rt.spawn(run(shutdown.clone()));
        Ok(Self {
            name: name.to_string(),
            rt: Some(rt),
            shutdown,
            task: Some(task),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests a graceful stop and waits for the role's `run` to return (bounded).
    pub async fn stop(mut self) {
        self.shutdown.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        self.kill();
    }

    /// Ends the role at once: every task dropped, every socket closed.
    pub fn kill(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RoleRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
