//! Process metrics read from `/proc` at scrape time, under the names the Prometheus
//! clients of other languages use: `process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`, `process_threads`. A value that
//! cannot be read is left out; on other systems than Linux all are.
//!
//! Why not a crate: prometheus-client (0.23) ships no process collector; the `prometheus`
//! crate's one belongs to that other library's registry, and `metrics-process` to the
//! `metrics` facade; `procfs` parses far more than these seven numbers. Reading four
//! short text files and counting `/proc/self/fd` takes the few dozen lines below, without
//! `unsafe` or `sysconf`, and the parsers are tested on fixed text.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Kernel clock ticks per second in `/proc/*/stat` (`USER_HZ`). Fixed at 100 by the
/// kernel's user ABI on every architecture cmg builds for; Prometheus's Go `procfs`
/// hard-codes it the same way rather than call `sysconf(_SC_CLK_TCK)`.
const USER_HZ: f64 = 100.0;

/// The collector registered by the admin listener; reads on every scrape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessCollector;

/// One reading; `None` where the value could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Sample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

impl Sample {
    #[cfg(target_os = "linux")]
    pub(crate) fn read() -> Self {
        let text = |p: &str| std::fs::read_to_string(p).ok();
        let mut s = Sample::default();
        if let Some(stat) = text("/proc/self/stat") {
            s.apply_stat(&stat, text("/proc/stat").as_deref().and_then(boot_time));
        }
        s.resident_bytes = text("/proc/self/status")
            .as_deref()
            .and_then(resident_bytes);
        s.max_fds = text("/proc/self/limits")
            .as_deref()
            .and_then(max_open_files);
        s.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        s
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn read() -> Self {
        Sample::default()
    }

    /// Takes CPU time, threads, virtual size and start time from `/proc/self/stat`.
    pub(crate) fn apply_stat(&mut self, stat: &str, boot_time: Option<u64>) {
        // The command name (field 2) is in parentheses and may hold spaces or ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return;
        };
        // Field n of proc(5) is rest's (n - 3)th word.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let num = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (num(14), num(15)) {
            self.cpu_seconds = Some((utime + stime) as f64 / USER_HZ);
        }
        self.threads = num(20);
        if let (Some(start), Some(boot)) = (num(22), boot_time) {
            self.start_time_seconds = Some(boot as f64 + start as f64 / USER_HZ);
        }
        self.virtual_bytes = num(23);
    }
}

/// `btime` of `/proc/stat`: boot time in seconds since the epoch.
pub(crate) fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `VmRSS` of `/proc/self/status` (in kB there), in bytes.
pub(crate) fn resident_bytes(status: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: u64 = kb.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits` (absent when unlimited).
pub(crate) fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::read();
        let mut gauge = |name, help, unit: Option<Unit>, v: Option<u64>| match v {
            Some(v) => {
                let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
                g.encode(encoder.encode_descriptor(name, help, unit.as_ref(), g.metric_type())?)
            }
            None => Ok(()),
        };
        let bytes = || Some(Unit::Bytes);
        gauge(
            "process_resident_memory",
            "Resident memory size",
            bytes(),
            s.resident_bytes,
        )?;
        gauge(
            "process_virtual_memory",
            "Virtual memory size",
            bytes(),
            s.virtual_bytes,
        )?;
        gauge(
            "process_open_fds",
            "Open file descriptors",
            None,
            s.open_fds,
        )?;
        gauge(
            "process_max_fds",
            "Limit of open file descriptors",
            None,
            s.max_fds,
        )?;
        gauge("process_threads", "OS threads", None, s.threads)?;
        if let Some(v) = s.start_time_seconds {
            let g = ConstGauge::new(v);
            let help = "Start time of the process since the Unix epoch";
            let unit = Unit::Seconds;
            g.encode(encoder.encode_descriptor(
                "process_start_time",
                help,
                Some(&unit),
                g.metric_type(),
            )?)?;
        }
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            let help = "User and system CPU time spent";
            let unit = Unit::Seconds;
            c.encode(encoder.encode_descriptor(
                "process_cpu",
                help,
                Some(&unit),
                c.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
