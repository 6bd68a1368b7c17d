//! Reading request bodies to their end through SHA-256 into a sink, and the response
//! body type. Memory stays bounded: a spool keeps at most [`SPOOL_MEMORY`] bytes in
//! memory and moves the rest to a file under `tmp/`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// The body type of every response.
pub(crate) type RespBody = BoxBody<Bytes, std::io::Error>;

/// Bodies up to this size are echoed from memory; larger ones spill to a file.
pub(crate) const SPOOL_MEMORY: usize = 256 * 1024;

/// Read size when streaming a file back.
const FILE_CHUNK: usize = 64 * 1024;

pub(crate) fn empty() -> RespBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub(crate) fn full(data: impl Into<Bytes>) -> RespBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Streams `chunks` as the body.
pub(crate) fn chunks<S>(stream: S) -> RespBody
where
    S: futures_util::Stream<Item = Bytes> + Send + Sync + 'static,
{
    BodyExt::boxed(StreamBody::new(stream.map(|b| Ok(Frame::data(b)))))
}

/// Streams an open file from its current position to its end.
pub(crate) fn file_body(file: tokio::fs::File) -> RespBody {
    let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK);
    BodyExt::boxed(StreamBody::new(stream.map_ok(Frame::data)))
}

/// Why a request body did not arrive whole.
#[derive(Debug)]
pub(crate) enum BodyFailure {
    /// The peer's stream failed: reset, truncated, malformed chunking.
    Stream(hyper::Error),
    /// The bytes arrived but could not be stored.
    Store(std::io::Error),
}

impl std::fmt::Display for BodyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(e) => write!(f, "body stream: {e}"),
            Self::Store(e) => write!(f, "storing body: {e}"),
        }
    }
}

/// What was read of a request body.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
    pub(crate) failure: Option<BodyFailure>,
}

impl Received {
    pub(crate) fn complete(&self) -> bool {
        self.failure.is_none()
    }
}

/// Where body bytes go.
#[derive(Debug)]
pub(crate) enum Sink {
    Discard,
    Spool(Spool),
    File(tokio::fs::File),
}

impl Sink {
    async fn write(&mut self, data: &Bytes) -> std::io::Result<()> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Spool(spool) => spool.push(data).await,
            Sink::File(file) => file.write_all(data).await,
        }
    }

    async fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Discard | Sink::Spool(_) => Ok(()),
            Sink::File(file) => file.flush().await,
        }
    }
}

/// Reads `body` to its end (or first failure), hashing every data byte into `sink`.
pub(crate) async fn read_body(mut body: Incoming, sink: &mut Sink) -> Received {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                failure = Some(BodyFailure::Stream(e));
                break;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        hasher.update(&data);
        bytes += data.len() as u64;
        if let Err(e) = sink.write(&data).await {
            failure = Some(BodyFailure::Store(e));
            break;
        }
    }
    if failure.is_none() {
        if let Err(e) = sink.finish().await {
            failure = Some(BodyFailure::Store(e));
        }
    }
    Received {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        failure,
    }
}

/// A body held in memory up to [`SPOOL_MEMORY`], then in an anonymous file.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    memory: Vec<Bytes>,
    in_memory: usize,
    file: Option<tokio::fs::File>,
}

impl Spool {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            memory: Vec::new(),
            in_memory: 0,
            file: None,
        }
    }

    async fn push(&mut self, data: &Bytes) -> std::io::Result<()> {
        if let Some(file) = &mut self.file {
            return file.write_all(data).await;
        }
        if self.in_memory + data.len() <= SPOOL_MEMORY {
            self.in_memory += data.len();
            self.memory.push(data.clone());
            return Ok(());
        }
        let mut file = open_anonymous(&self.dir).await?;
        for chunk in self.memory.drain(..) {
            file.write_all(&chunk).await?;
        }
        self.in_memory = 0;
        file.write_all(data).await?;
        self.file = Some(file);
        Ok(())
    }

    /// The spooled bytes as a response body, from the start.
    pub(crate) async fn into_body(self) -> std::io::Result<RespBody> {
        match self.file {
            Some(mut file) => {
                file.flush().await?;
                file.rewind().await?;
                Ok(file_body(file))
            }
            None if self.memory.len() == 1 => Ok(full(self.memory[0].clone())),
            None => Ok(chunks(futures_util::stream::iter(self.memory))),
        }
    }
}

/// Creates a read-write file under `dir` and unlinks it at once: the open handle keeps
/// it alive, and nothing is left behind however the request ends.
async fn open_anonymous(dir: &Path) -> std::io::Result<tokio::fs::File> {
    let path = dir.join(format!("spool-{:016x}", rand::random::<u64>()));
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .await?;
    if let Err(e) = tokio::fs::remove_file(&path).await {
        tracing::debug!(target: "cmg_mp", error = %e, path = %path.display(), "spool file not unlinked");
    }
    Ok(file)
}
