//! Queries over the management point's journal: one entry per request it received.

use std::time::Duration;

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

/// Waits (bounded) for an entry tagged `tag`; returns what is there at the deadline.
/// For requests that may have reached the MP with a cut-off body: the MP journals
/// once it has read the body to its end or failure, which can be after the client's
/// answer.
pub async fn tagged_eventually(
    cluster: &Cluster,
    tag: &str,
    within: Duration,
) -> Vec<JournalEntry> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = tagged(cluster, tag);
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
