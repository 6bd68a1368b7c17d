//! Thread-per-core data path: `n` single-threaded tokio runtimes ("shards"), each on a
//! thread of its own.
//!
//! A proxy hop's request touches several tasks (the client connection, the channel's
//! HTTP/2 connection, the per-stream task, the pooled connection to the role). On a
//! work-stealing runtime they land on different worker threads, and every hand-off is a
//! cross-thread wake-up (a futex and, on a VM, an inter-processor interrupt). A role
//! that places a connection on one shard, and the channel that connection's requests
//! use on the same shard, keeps a request on one thread from the first byte to the
//! last: nginx's worker model, with tokio's current-thread scheduler in each worker.
//!
//! Work is placed, never stolen: the role decides which shard a connection or a
//! channel lives on. Tasks spawned from a shard stay on it.
//!
//! Dropping [`Shards`] stops every shard: each runtime is dropped on its own thread,
//! which drops the tasks still on it (their sockets close). Roles drain their work
//! before that; dropping is the kill path.

mod stream;

pub use stream::ShardStream;

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle as TaskHandle;

/// Most data-path threads a role may be configured with.
pub const MAX_THREADS: usize = 1024;

/// A role's `threads` setting: absent means one per core; otherwise 1 to
/// [`MAX_THREADS`].
pub fn threads_setting(value: Option<usize>) -> Result<usize, String> {
    match value {
        None => Ok(Shards::default_count()),
        Some(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Some(n) => Err(format!("{n} is not between 1 and {MAX_THREADS}")),
    }
}

/// One shard: a current-thread runtime driven by its own thread.
#[derive(Debug)]
struct Shard {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The shards of one role instance.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
    handles: ShardHandles,
}

/// Spawning onto the shards without owning them: what tasks running on a shard keep
/// (an `Arc<Shards>` inside a shard's own task would keep the shards from ever
/// stopping). Spawning after the shards stopped drops the task.
#[derive(Debug, Clone)]
pub struct ShardHandles(Arc<[Handle]>);

impl ShardHandles {
    /// How many shards there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs `fut` on shard `index` (modulo the shard count).
    pub fn spawn_on<F>(&self, index: usize, fut: F) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0[index % self.0.len()].spawn(fut)
    }
}

impl Shards {
    /// Starts `n` shards (at least one), threads named `{name}-{i}`.
    pub fn start(n: usize, name: &str) -> std::io::Result<Self> {
        let mut shards = Vec::with_capacity(n.max(1));
        let mut handles = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // Either a stop signal or the `Shards` being dropped without one.
                    let _ = rt.block_on(stopped);
                    // Dropping `rt` here drops the tasks still on this shard.
                })?;
            shards.push(Shard {
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Self {
            shards,
            handles: ShardHandles(handles.into()),
        })
    }

    /// One shard per core the process may use.
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Never true: there is always at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Runs `fut` on shard `index` (modulo the shard count).
    pub fn spawn_on<F>(&self, index: usize, fut: F) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles.spawn_on(index, fut)
    }

    /// Spawning handles that do not keep the shards running.
    pub fn handles(&self) -> ShardHandles {
        self.handles.clone()
    }

    /// Stops every shard and waits for their threads, dropping the tasks still on them.
    /// Call it from outside any shard (it blocks; from async code, in `spawn_blocking`).
    pub fn stop_and_join(mut self) {
        self.stop_all();
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn stop_all(&mut self) {
        for s in &mut self.shards {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

impl Drop for Shards {
    /// Signals every shard to stop; does not wait (a drop may run on a runtime thread).
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
        Ok(tokio::runtime::Builder::new_current_thread()
            .build()?
            .block_on(f))
    }

    #[test]
    fn tasks_run_on_their_shard_and_stop_with_it() -> TestResult {
        let shards = Shards::start(2, "test-shard")?;
        assert_eq!(shards.len(), 2);
        let mut names = Vec::new();
        for i in 0..4 {
            let task = shards.spawn_on(i, async {
                std::thread::current().name().map(str::to_owned)
            });
            names.push(block_on(task)??);
        }
        let names: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "test-shard-0",
                "test-shard-1",
                "test-shard-0",
                "test-shard-1"
            ]
        );
        // A task that never ends is dropped when its shard stops, and spawning through
        // a handle afterwards drops the task instead of running it.
        let guard = Arc::new(());
        let held = guard.clone();
        let _task = shards.spawn_on(1, async move {
            let _held = held;
            std::future::pending::<()>().await
        });
        let handles = shards.handles();
        shards.stop_and_join();
        assert_eq!(Arc::strong_count(&guard), 1, "the task's state was dropped");
        let late = handles.spawn_on(0, async { 1 });
        assert!(block_on(late)?.is_err(), "a stopped shard runs nothing");
        Ok(())
    }

    #[test]
    fn threads_setting_defaults_to_the_cores_and_is_bounded() {
        assert_eq!(threads_setting(None), Ok(Shards::default_count()));
        assert_eq!(threads_setting(Some(3)), Ok(3));
        assert!(threads_setting(Some(0)).is_err());
        assert!(threads_setting(Some(MAX_THREADS + 1)).is_err());
    }
}
