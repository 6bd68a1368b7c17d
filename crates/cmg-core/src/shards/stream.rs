//! A TCP stream that can move to another shard after it has been set up.
//!
//! A tokio `TcpStream` is registered with the reactor of the runtime it was created on;
//! polled from another shard it still works, but every readiness event then wakes the
//! task from the first shard's thread. [`ShardStream`] lets the owner take the socket out
//! ([`ShardStream::detach`], which deregisters it), send the whole stream (and whatever
//! wraps it: a TLS session with its buffered records) to another shard, and register it
//! there ([`ShardStream::attach`]). Nothing in the kernel's socket buffers or in the
//! wrapper's buffers is lost on the way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A `TcpStream` that is either registered with the current shard or in transit.
#[derive(Debug)]
pub struct ShardStream(Option<TcpStream>);

impl From<TcpStream> for ShardStream {
    fn from(s: TcpStream) -> Self {
        Self(Some(s))
    }
}

fn in_transit() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream is moving between shards",
    )
}

impl ShardStream {
    /// Deregisters the socket from this shard's reactor and hands it out; until
    /// [`attach`](Self::attach), reads and writes fail with `NotConnected`.
    pub fn detach(&mut self) -> io::Result<std::net::TcpStream> {
        self.0.take().ok_or_else(in_transit)?.into_std()
    }

    /// Registers `socket` with the reactor of the runtime this is called on.
    pub fn attach(&mut self, socket: std::net::TcpStream) -> io::Result<()> {
        self.0 = Some(TcpStream::from_std(socket)?);
        Ok(())
    }
}

impl AsyncRead for ShardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Err(in_transit())),
        }
    }
}

impl AsyncWrite for ShardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => Poll::Ready(Err(in_transit())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(in_transit())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Err(in_transit())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Err(in_transit())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::Shards;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Bytes already in the socket when it moves are read on the new shard; while in
    /// transit the stream refuses I/O instead of panicking.
    #[test]
    fn moves_between_shards_without_losing_bytes() -> TestResult {
        let shards = Shards::start(2, "move")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let mut client = TcpStream::connect(l.local_addr()?).await?;
            let (accepted, _) = l.accept().await?;
            let accepted = accepted.into_std()?;
            let moving = shards.spawn_on(0, async move {
                let mut s = ShardStream::from(TcpStream::from_std(accepted)?);
                let mut first = [0u8; 5];
                s.read_exact(&mut first).await?;
                let socket = s.detach()?;
                let refused = s.write_all(b"x").await.map_err(|e| e.kind());
                Ok::<_, io::Error>((s, socket, first, refused))
            });
            client.write_all(b"hello world").await?;
            let (mut s, socket, first, refused) = moving.await??;
            assert_eq!(&first, b"hello");
            assert_eq!(refused, Err(io::ErrorKind::NotConnected));
            let thread = shards
                .spawn_on(1, async move {
                    s.attach(socket)?;
                    let mut rest = [0u8; 6];
                    s.read_exact(&mut rest).await?;
                    s.write_all(&rest).await?;
                    Ok::<_, io::Error>(std::thread::current().name().map(str::to_owned))
                })
                .await??;
            assert_eq!(thread.as_deref(), Some("move-1"));
            let mut back = [0u8; 6];
            client.read_exact(&mut back).await?;
            assert_eq!(&back, b" world");
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
        shards.stop_and_join();
        Ok(())
    }
}
