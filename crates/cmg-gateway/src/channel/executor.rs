//! The executor a channel's HTTP/2 client spawns its tasks with.
//!
//! hyper drives an HTTP/2 client connection in a task of its own (and each request
//! body in another), spawned through the executor it is built with. The channel's
//! writes coalesce ([`cmg_core::coalesce`]) only if that task's polls are counted, so
//! this executor spawns every future through the channel's [`PollCount`].

use std::future::Future;

use cmg_core::coalesce::PollCount;

/// Spawns on the current runtime (the channel's shard), counting polls.
#[derive(Debug, Clone)]
pub struct CountingExecutor(pub PollCount);

impl<F> hyper::rt::Executor<F> for CountingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(self.0.drive(fut));
    }
}
