//! The lab test's handles: [`Lab`] drives `deploy/lab/lab` (up on creation, down on
//! drop) and probes its hosts; [`Load`] sends requests from the client hosts' network
//! namespaces (each worker thread enters its host's namespace with `setns(2)`, so its
//! sockets are that host's) and records every request's id, time and outcome.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cmg_client::{ClientTls, HttpsClient};

pub const SERVICE: &str = "cmg.demo.test";
pub const PREFIX: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";
pub const BALANCER: &str = "10.77.0.2:443";

/// A lab brought up by `deploy/lab/lab up`; `down` on drop, whatever happened.
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    script: PathBuf,
}

impl Lab {
    pub fn up(dir: &Path) -> Self {
        let lab = Self {
            name: format!("cmgt{}", std::process::id() % 10_000),
            dir: dir.to_path_buf(),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/lab/lab"),
        };
        let out = lab.run(&["up"]);
        assert!(out.status.success(), "lab up: {}", text(&out));
        lab
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.script)
            .args(args)
            .env("CMG", env!("CARGO_BIN_EXE_cmg"))
            .env("CMG_LAB", &self.name)
            .env("CMG_LAB_DIR", &self.dir)
            .output()
            .expect("run deploy/lab/lab")
    }

    /// `lab ARGS`, which must succeed; its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lab {}: {}",
            args.join(" "),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pid(&self, component: &str) -> i32 {
        self.must(&["pid", component]).trim().parse().expect("pid")
    }

    /// A plain-HTTP GET from inside host `host`'s namespace (curl, 1 s bound); the body
    /// of a 2xx answer.
    pub fn get(&self, host: &str, url: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{host}", self.name)])
            .args(["curl", "-sf", "-m", "1", url])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The connection points with a channel to gateway `gw` (from its admin `/channels`,
    /// asked from the balancer's host); `None` when the admin port does not answer.
    pub fn channels_of(&self, gw: &str) -> Option<Vec<String>> {
        let body = self.get("lb", &format!("http://{}:9100/channels", gw_ip(gw)))?;
        let mut cps: Vec<String> = body
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        cps.sort();
        cps.dedup();
        Some(cps)
    }

    /// HAProxy's view of gateway `gw` ("UP", "DOWN", ...).
    pub fn balancer_state(&self, gw: &str) -> String {
        self.must(&["lb-states"])
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{gw} ")).map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.join("mp/journal.jsonl")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!("lab down: {}", text(&out));
        }
    }
}

pub fn gw_ip(gw: &str) -> String {
    format!("10.77.0.2{}", &gw[2..])
}

pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

/// Polls `ok` every 50 ms until it holds; the time it took. Panics after `bound`.
pub fn wait_until(what: &str, bound: Duration, ok: impl FnMut() -> bool) -> Duration {
    poll(what, bound, Duration::from_millis(50), ok)
}

/// Watches process `pid` closely (every 2 ms: reading `/proc` is cheap) until it is
/// gone; the time that took. Panics after `bound`.
pub fn wait_gone(what: &str, pid: i32, bound: Duration) -> Duration {
    poll(what, bound, Duration::from_millis(2), || !alive(pid))
}

fn poll(what: &str, bound: Duration, every: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let bound = cmg_test_support::patience(bound);
    loop {
        if ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "waited {bound:?} for {what}");
        std::thread::sleep(every);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One request a client sent.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub start: Instant,
    /// `None`: a 200 answer; else what failed.
    pub error: Option<String>,
}

/// Workers on the client hosts, each sending one request at a time, paced, with a new
/// connection (through the balancer, so often to another instance) every 20 requests.
pub struct Load {
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<Record>>>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(lab: &Lab, hosts: &[&str], per_host: usize, pace: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let tls = ClientTls {
            ca: vec![lab.dir.join("pki/root-ca.pem")],
            identity: Some((
                lab.dir.join("pki/client.pem"),
                lab.dir.join("pki/client.key"),
            )),
        };
        let mut workers = Vec::new();
        for host in hosts {
            for w in 0..per_host {
                let netns = format!("/run/netns/{}-{host}", lab.name);
                let tag = format!("{host}-{w}");
                let (stop, records, tls) = (stop.clone(), records.clone(), tls.clone());
                workers.push(std::thread::spawn(move || {
                    enter_netns(&netns);
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(worker(tag, w % 2 == 0, tls, pace, stop, records));
                }));
            }
        }
        Self {
            stop,
            records,
            workers,
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().expect("records").clone()
    }

    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().expect("load worker");
        }
        Arc::try_unwrap(self.records)
            .expect("workers ended")
            .into_inner()
            .expect("records")
    }
}

/// Moves this thread (only) into the network namespace at `path`.
fn enter_netns(path: &str) {
    let ns = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

async fn worker(
    tag: String,
    http2: bool,
    tls: ClientTls,
    pace: Duration,
    stop: Arc<AtomicBool>,
    records: Arc<Mutex<Vec<Record>>>,
) {
    let addr: SocketAddr = BALANCER.parse().expect("address");
    let mut client = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if n.is_multiple_of(20) {
            client = None;
        }
        if client.is_none() {
            match HttpsClient::new(&tls, addr, SERVICE, http2) {
                Ok(c) => client = Some(c),
                // The lab is gone (the test failed and removed it): stop quietly.
                Err(_) => return,
            }
        }
        let Some(c) = client.as_ref() else { return };
        n += 1;
        let id = format!("{tag}-{n}");
        let start = Instant::now();
        let req = http::Request::builder()
            .method("CCM_POST")
            .uri(format!("{PREFIX}/request?lab={id}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"lab")))
            .expect("request");
        let send = async {
            let resp = c.request(req).await.map_err(|e| format!("{e:#}"))?;
            let status = resp.status();
            cmg_client::collect_body(resp)
                .await
                .map_err(|e| format!("{e:#}"))?;
            if status == 200 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        };
        let error = match tokio::time::timeout(Duration::from_secs(10), send).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("no answer within 10 s".to_owned()),
        };
        if error.is_some() {
            // A failed connection is not reused.
            client = None;
        }
        records
            .lock()
            .expect("records")
            .push(Record { id, start, error });
        // Pacing the load (the test's request rate), not a wait for an event.
        tokio::time::sleep(pace).await;
    }
}
