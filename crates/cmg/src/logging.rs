//! Logging: human-readable lines on stderr, and with `--log-dir` the product's log files:
//! `CMGService.log` (gateway service and channels), `CMGHttpHandler.log` (one access line
//! per request), `SMS_Cloud_ProxyConnector.log` (connection point), `MP.log`, `CloudMgr.log` (site:
//! lifecycle, publishing, key rotation), `CMGSetup.log` (deployment packages) and
//! `ClientLocation.log` (the client agent).
//! `RUST_LOG` overrides the stderr filter (default `info`, access lines off stderr).
//! Lines on stderr are coloured only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (no-color.org): through a pipe, into a file or journald they are plain text.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer};

const ACCESS: &str = "cmg_gateway::access";
/// Deployment packages (`cmg site gateway export`) and instance setup.
const SETUP: &str = "cmg_site::setup";

/// The field formatter of the log files. A span's fields are formatted once per
/// formatter *type* and kept in the span; with one type for all layers the files
/// reused what the stderr layer had written, ANSI colour codes included
/// (tokio-rs/tracing#1817). A type of their own gives the files their own plain copy.
#[derive(Debug, Default)]
struct FileFields(fmt::format::DefaultFields);

impl<'writer> fmt::FormatFields<'writer> for FileFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// Keeps the file writers flushing until dropped (at exit).
#[derive(Debug)]
pub struct Guards(#[allow(dead_code)] Vec<WorkerGuard>);

fn file_layer<S>(
    dir: &Path,
    name: &str,
    keep: impl Fn(&str) -> bool + Send + Sync + 'static,
    guards: &mut Vec<WorkerGuard>,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
    guards.push(guard);
    plain_layer(writer)
        .with_filter(filter_fn(move |m| {
            keep(m.target()) && *m.level() <= tracing::Level::INFO
        }))
        .boxed()
}

/// A layer that writes plain text, span fields included, whatever the other layers do.
fn plain_layer<S, W>(writer: W) -> fmt::Layer<S, FileFields, fmt::format::Format, W>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> fmt::MakeWriter<'w> + 'static,
{
    fmt::layer()
        .fmt_fields(FileFields::default())
        .with_writer(writer)
        .with_ansi(false)
}

/// Whether stderr lines carry colour codes: a terminal, and no `NO_COLOR` (any
/// non-empty value turns colour off).
fn stderr_colour() -> bool {
    use std::io::IsTerminal as _;
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. `quiet` lowers stderr to warnings (the demo prints
/// its own summary).
pub fn init(log_dir: Option<&Path>, quiet: bool) -> std::io::Result<Guards> {
    let default = if quiet {
        "warn"
    } else {
        "info,cmg_gateway::access=warn"
    };
    let stderr_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr_colour())
        .with_filter(stderr_filter)
        .boxed();
    let mut guards = Vec::new();
    let mut layers = vec![stderr];
    if let Some(dir) = log_dir {
        std::fs::create_dir_all(dir)?;
        layers.push(file_layer(
            dir,
            "CMGHttpHandler.log",
            |t| t == ACCESS,
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "CMGService.log",
            |t| t.starts_with("cmg_gateway") && t != ACCESS || t.starts_with("cmg_pki"),
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "SMS_Cloud_ProxyConnector.log",
            |t| t.starts_with("cmg_connector"),
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "CloudMgr.log",
            |t| t.starts_with("cmg_site") && t != SETUP,
            &mut guards,
        ));
        layers.push(file_layer(dir, "CMGSetup.log", |t| t == SETUP, &mut guards));
        layers.push(file_layer(
            dir,
            "MP.log",
            |t| t.starts_with("cmg_mp"),
            &mut guards,
        ));
        // The client agent (`cmg client run`): the product's location log.
        layers.push(file_layer(
            dir,
            "ClientLocation.log",
            |t| t.starts_with("cmg_agent"),
            &mut guards,
        ));
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(Guards(guards))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into shared memory, to read back what a layer wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }

    /// A coloured terminal layer next to a file layer: the file gets the span's fields
    /// in plain text (tokio-rs/tracing#1817 made it reuse the terminal's coloured copy).
    #[test]
    fn file_lines_have_no_colour_codes_next_to_a_coloured_terminal() {
        let terminal = Buffer::default();
        let file = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(fmt::layer().with_writer(terminal.clone()).with_ansi(true))
            .with(plain_layer(file.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("channel", connection_id = "c-1");
            let _entered = span.enter();
            tracing::info!(instance = "gw1", "channel up");
        });
        let terminal = String::from_utf8(terminal.0.lock().expect("lock").clone()).expect("utf-8");
        let file = String::from_utf8(file.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(
            terminal.contains('\u{1b}'),
            "the terminal layer colours: {terminal:?}"
        );
        assert!(file.contains("channel{connection_id=\"c-1\"}"), "{file:?}");
        assert!(
            !file.contains('\u{1b}'),
            "colour codes in the file: {file:?}"
        );
    }
}
