//! Queries over the management point's journal: one entry per request it received.

use cmg_cluster::Cluster;
use cmg_mp::JournalEntry;

use crate::TAG;

/// Every entry so far.
pub fn entries(cluster: &Cluster) -> Vec<JournalEntry> {
    match cmg_mp::read_journal(&cluster.mp_journal) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!(
            "cannot read the MP journal {}: {e}",
            cluster.mp_journal.display()
        ),
    }
}

/// Every value of header `name` (lowercase) in `entry`.
pub fn header<'a>(entry: &'a JournalEntry, name: &str) -> Vec<&'a str> {
    entry
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The entries of requests that carried test tag `tag`.
pub fn tagged(cluster: &Cluster, tag: &str) -> Vec<JournalEntry> {
    entries(cluster)
        .into_iter()
        .filter(|e| header(e, TAG.as_str()).contains(&tag))
        .collect()
}
