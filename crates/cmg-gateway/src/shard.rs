//! Placing an established connection on a data-path thread (shard): the TLS stream
//! leaves the reactor of the runtime that accepted it and joins the shard's. Used for
//! client connections (`listener`) and channels (`channel::serve`); it decides nothing
//! about which shard (that is the caller's).

use std::future::Future;

use cmg_core::shards::{ShardHandles, ShardStream};
use tokio_rustls::server::TlsStream;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// A TLS connection accepted on either face, movable between shards.
pub(crate) type ServerTls = TlsStream<ShardStream>;

/// Moves an established connection to `shard` (deregistered from this runtime's
/// reactor, registered with the shard's) and runs `serve` on it there, tracked by
/// `tracker`.
pub(crate) fn on_shard<F, Fut>(
    shards: &ShardHandles,
    shard: usize,
    tls: ServerTls,
    tracker: &TaskTracker,
    serve: F,
) where
    F: FnOnce(ServerTls) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_shard_boxed(shards, shard, Box::new(tls), tracker, move |tls| {
        serve(*tls)
    });
}

/// [`on_shard`] for a connection whose TLS stream stays boxed: the task then holds a
/// pointer to the TLS session rather than the session itself at every level of its
/// future (client connections, which spend most of their life idle: `conn::serve`).
pub(crate) fn on_shard_boxed<F, Fut>(
    shards: &ShardHandles,
    shard: usize,
    mut tls: Box<ServerTls>,
    tracker: &TaskTracker,
    serve: F,
) where
    F: FnOnce(Box<ServerTls>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let socket = match tls.get_mut().0.detach() {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "connection could not leave the accepting runtime; closed");
            return;
        }
    };
    shards.spawn_on(
        shard,
        tracker.track_future(async move {
            match tls.get_mut().0.attach(socket) {
                Ok(()) => serve(tls).await,
                Err(e) => debug!(shard, error = %e, "connection could not join its shard; closed"),
            }
        }),
    );
}
