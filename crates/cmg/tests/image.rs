//! The container image (`deploy/image/build.sh`, an OCI image layout built without a
//! container engine): two builds of the same binary are byte for byte the same, and the
//! image's root filesystem, unpacked from its one layer and run with `unshare` and
//! `chroot` as the image's user (65532) in a network namespace of its own, serves a
//! role whose admin `/ready` answers 200.
//!
//! Built from the test's own `cmg` (a debug build; CI and release use
//! `target/release/cmg`, the script's default). Needs root (chroot, namespaces), as CI
//! runs; `CMG_SKIP_NETNS=1` skips it, saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn build(out: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/image/build.sh");
    let o = Command::new(script)
        .arg(env!("CARGO_BIN_EXE_cmg"))
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run build.sh");
    assert!(
        o.status.success(),
        "build.sh: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read_to_string(out.join("index.json")).expect("index.json")
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json")
}

fn blob(image: &Path, digest: &str) -> PathBuf {
    image
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("sha256 digest"))
}

fn run(cmd: &mut Command) {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A network namespace and the process run in it; both removed on drop.
struct Sandbox {
    netns: String,
    child: Option<Child>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Every process left in the namespace is this test's: the image's cmg runs as
        // 65532 after `chroot --userspec`, and that change of user clears the parent-death
        // signal `unshare --kill-child` relies on, so killing the child alone left it
        // running after each test.
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

#[test]
fn the_image_is_reproducible_and_its_root_filesystem_serves() {
    if std::env::var_os("CMG_SKIP_NETNS").is_some() {
        eprintln!("CMG_SKIP_NETNS set: the image test (chroot, namespaces) not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let index = build(&a);
    assert_eq!(index, build(&b), "two builds of one binary differ");

    // index -> manifest -> config (the user, the entrypoint) and the layer.
    let index: serde_json::Value = serde_json::from_str(&index).expect("index");
    let manifest = json(blob(
        &a,
        index["manifests"][0]["digest"].as_str().expect("d"),
    ));
    let config = json(blob(&a, manifest["config"]["digest"].as_str().expect("d")));
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/cmg");
    let layer = blob(&a, manifest["layers"][0]["digest"].as_str().expect("d"));
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&rootfs));
    assert!(!rootfs.join("bin/sh").exists(), "the image has no shell");

    std::fs::write(
        rootfs.join("etc/cmg/mp.toml"),
        "listen = \"127.0.0.1:8080\"\ndata_dir = \"/tmp/mp\"\n[admin]\nlisten = \"127.0.0.1:9100\"\n",
    )
    .expect("write mp.toml");
    let netns = format!("cmgt-image-{}", std::process::id());
    run(Command::new("ip").args(["netns", "add", &netns]));
    let mut sandbox = Sandbox {
        netns: netns.clone(),
        child: None,
    };
    run(Command::new("ip").args(["netns", "exec", &netns, "ip", "link", "set", "lo", "up"]));
    let log = std::fs::File::create(dir.path().join("mp.log")).expect("log");
    sandbox.child = Some(
        Command::new("ip")
            .args(["netns", "exec", &netns])
            .args(["unshare", "--mount", "--pid", "--fork", "--kill-child"])
            .args(["chroot", "--userspec=65532:65532"])
            .arg(&rootfs)
            .args(["/usr/local/bin/cmg", "mp", "--config", "/etc/cmg/mp.toml"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the image's cmg"),
    );

    // No event crosses the chroot: poll its /ready, bounded.
    let bound = cmg_test_support::patience(Duration::from_secs(30));
    let start = Instant::now();
    loop {
        let o = Command::new("ip")
            .args(["netns", "exec", &netns])
            .args(["curl", "-s", "-m", "1", "-w", "\n%{http_code}"])
            .arg("http://127.0.0.1:9100/ready")
            .output()
            .expect("curl");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if out.ends_with("\n200") {
            break;
        }
        let exited = sandbox
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        assert!(
            exited.is_none() && start.elapsed() < bound,
            "no /ready 200 from the image (exit {exited:?}, last answer {out:?}): {}",
            std::fs::read_to_string(dir.path().join("mp.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
