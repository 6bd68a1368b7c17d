//! A network namespace joined to this host by a veth pair, for the tests that need a
//! host to really lose its network (`client_netns.rs`, `silent_channel.rs`). Needs root,
//! as CI runs; everything it adds (the namespace, the veth pair, host routes it was
//! asked to add) is removed on drop.
#![allow(dead_code)] // each test file uses its own part

use std::net::IpAddr;
use std::process::{Child, Command};

/// `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace `cmgt-TAG-PID`, its veth pair `cmgLETTER<n>a` (host) / `…b` (inside),
/// host end `10.NET.<n>.1/30`, inside end `10.NET.<n>.2/30`; `<n>` comes from the
/// process ID, so concurrent test binaries do not collide.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_ip: IpAddr,
    pub ns_ip: IpAddr,
    /// Host routes added with [`Netns::host_blackhole`], removed on drop.
    host_blackholes: Vec<String>,
}

impl Netns {
    pub fn create(tag: &str, letter: char, net: u8) -> Self {
        let id = std::process::id() % 200 + 20;
        let name = format!("cmgt-{tag}-{}", std::process::id());
        let host_if = format!("cmg{letter}{id}a");
        let ns_if = format!("cmg{letter}{id}b");
        let host_ip: IpAddr = format!("10.{net}.{id}.1").parse().expect("ip");
        let ns_ip: IpAddr = format!("10.{net}.{id}.2").parse().expect("ip");
        ip(&["netns", "add", &name]);
        let ns = Self {
            name,
            host_if,
            ns_if,
            host_ip,
            ns_ip,
            host_blackholes: Vec::new(),
        };
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.ns_if,
        ]);
        ip(&["link", "set", &ns.ns_if, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.exec(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns.ns_if]);
        ns.exec(&["link", "set", &ns.ns_if, "up"]);
        ns.exec(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip ARGS` inside the namespace, which must succeed.
    pub fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Drops, on the host, every packet to `to` (a prefix), silently; removed on drop.
    pub fn host_blackhole(&mut self, to: &str) {
        ip(&["route", "add", "blackhole", to]);
        self.host_blackholes.push(to.to_owned());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for to in &self.host_blackholes {
            let _ = Command::new("ip")
                .args(["route", "del", "blackhole", to])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A child process ended (by PID) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
