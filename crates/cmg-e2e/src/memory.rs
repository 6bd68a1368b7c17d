//! The resident set of this test process, for tests that bound what an attack may cost.
//! The cluster runs in the test's process, so this is the gateway, the connection points
//! and the management point together: tests that measure it must not run beside others
//! that grow it (each such file serialises its tests).

/// The resident set of this process in KiB (`VmRSS` in `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Panics when the resident set grew by more than `bound_kib` since `before`.
pub fn assert_grew_at_most(before: u64, bound_kib: u64, what: &str) {
    let after = rss_kib();
    let grew = after.saturating_sub(before);
    eprintln!("{what}: resident set {before} KiB -> {after} KiB");
    assert!(
        grew <= bound_kib,
        "{what}: the process grew by {grew} KiB (bound {bound_kib} KiB)"
    );
}
