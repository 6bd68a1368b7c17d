//! A site for the CLI tests (`admin_cli.rs`, `site_cli.rs`): `cmg site init`, then
//! `cmg site serve` on a free loopback port, and `cmg site …` commands against it, each
//! a process of its own with the caller's site environment cleared.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The site's environment variables (and colour and log settings), cleared so the
/// caller's shell does not leak in.
const ENV: &[&str] = &[
    "CMG_SITE_DIR",
    "CMG_SITE_URL",
    "CMG_SITE_ADMIN_TOKEN",
    "CMG_SITE_MASTER_KEY",
    "CMG_SITE_DATABASE_URL",
    "NO_COLOR",
    "RUST_LOG",
];

/// `cmg ARGS` with the environment above cleared.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmg"));
    c.args(args);
    for v in ENV {
        c.env_remove(v);
    }
    c
}

/// `cmg ARGS`, run to its end.
pub fn run(args: &[&str]) -> Output {
    command(args).output().expect("run cmg")
}

/// A process's status and both streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dir/file` as a string argument.
pub fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().expect("utf-8").to_owned()
}

/// A served site; the server ends when the value is dropped.
pub struct Site {
    server: Child,
    pub dir: String,
    pub port: u16,
}

impl Site {
    /// `cmg site init` (with each `--api-name`), then [`Site::serve`].
    pub fn start(dir: &Path, api_names: &[&str]) -> Self {
        let d = dir.to_str().expect("utf-8");
        let mut init = vec!["site", "--dir", d, "init"];
        for n in api_names {
            init.extend_from_slice(&["--api-name", n]);
        }
        let out = run(&init);
        assert!(out.status.success(), "{}", text(&out));
        Self::serve(dir)
    }

    /// `cmg site serve` on a site `init` made, on a free loopback port read from the
    /// line it prints once it listens.
    pub fn serve(dir: &Path) -> Self {
        let dir = dir.to_str().expect("utf-8").to_owned();
        let mut server = command(&["site", "--dir", &dir, "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run cmg site serve");
        let mut line = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the serve output");
        let port = line
            .trim()
            .strip_prefix("site API on https://")
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("serve printed {line:?}"));
        Self { server, dir, port }
    }

    /// The command `cmg site ARGS --url https://HOST:PORT`, to add to.
    pub fn command_as(&self, host: &str, args: &[&str]) -> Command {
        let url = format!("https://{host}:{}", self.port);
        let mut all = vec!["site", "--dir", &self.dir];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url]);
        command(&all)
    }

    /// `cmg site ARGS` against `host` (a name the site's certificate may or may not hold).
    pub fn run_as(&self, host: &str, args: &[&str]) -> Output {
        self.command_as(host, args).output().expect("run cmg site")
    }

    /// `cmg site ARGS` against 127.0.0.1.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_as("127.0.0.1", args)
    }

    /// `cmg site ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "cmg site {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `cmg site ARGS --json`, which must succeed and print JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        if !args.contains(&"--json") {
            args.push("--json");
        }
        let args = &args[..];
        let stdout = self.ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("cmg site {args:?} printed no JSON ({e}):\n{stdout}"))
    }

    /// Stops the server as a service manager would (SIGTERM) and checks it drained.
    pub fn stop(&mut self) {
        let pid = self.server.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid}");
        let status = self.server.wait().expect("wait for cmg site serve");
        assert!(status.success(), "cmg site serve ended with {status}");
    }
}

/// A failed test still ends its server.
impl Drop for Site {
    fn drop(&mut self) {
        if let Ok(None) = self.server.try_wait() {
            let _ = self.server.kill();
            let _ = self.server.wait();
        }
    }
}
