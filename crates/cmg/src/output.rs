//! What the commands print for a person: aligned tables, key/value blocks, times (RFC
//! 3339 in the local time zone with a relative age, never epoch seconds), byte counts
//! and one error line with its causes. Shared by every subcommand so they look alike.
//!
//! It does not decide *what* a command prints (the command does), and it never colours:
//! tables go to stdout, which may be a file or a pipe.

use std::fmt::Write as _;

use chrono::{DateTime, Local, SecondsFormat, TimeZone};

/// A table: a header row and rows of cells, printed with each column as wide as its
/// widest cell, two spaces apart, the last column unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are kept.
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(self.header.len());
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    line.push_str("  ");
                }
                let _ = write!(line, "{cell:<width$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A block of `key: value` lines, the values aligned one column past the longest key;
/// a value of several lines continues at that column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    rows: Vec<(String, String)>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line.
    pub fn field(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.rows.push((key.to_owned(), value.into()));
        self
    }

    /// The block as text, each line ending in a newline.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(k, _)| k.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.rows {
            let mut lines = value.lines();
            let first = lines.next().unwrap_or("");
            let line = format!("{:<width$}  {first}", format!("{key}:"));
            out.push_str(line.trim_end());
            out.push('\n');
            for more in lines {
                let _ = writeln!(out, "{:width$}  {more}", "");
            }
        }
        out
    }
}

/// A list as one cell: `a, b`, or `-` when empty.
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `n` bytes in decimal units: `812 B`, `1.50 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// `at` (Unix seconds) as RFC 3339 in the local time zone (`TZ`, else the system's), to
/// the second: `2026-12-07T05:21:00+01:00`, `2026-12-07T04:21:00Z` in UTC.
pub fn time(at: i64) -> String {
    time_in(at, &Local)
}

/// `at` as RFC 3339 in the time zone `tz`.
pub fn time_in<Tz: TimeZone>(at: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match DateTime::from_timestamp(at, 0) {
        Some(t) => t
            .with_timezone(tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        None => format!("(invalid time {at})"),
    }
}

/// How long ago `at` was, seen at `now` (both Unix seconds): `45 s ago`, `12 min ago`,
/// `5 h ago`, `3 d ago`; a time ahead reads `in 3 d`.
pub fn age(at: i64, now: i64) -> String {
    let d = now - at;
    let span = |s: i64| match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    if d >= 0 {
        format!("{} ago", span(d))
    } else {
        format!("in {}", span(-d))
    }
}

/// `at` as RFC 3339 with its relative age: `2026-12-07T04:21:00Z (3 min ago)`.
pub fn when(at: i64, now: i64) -> String {
    format!("{} ({})", time(at), age(at, now))
}

/// An error and its causes on one line: each cause once (an `io::Error` that wraps an
/// error displays it *and* returns it as source), none lost (hyper's `client error
/// (Connect)` keeps the reason in its source).
pub fn error(e: &anyhow::Error) -> String {
    cmg_core::error_chain::chain(e.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["NAME", "STATE", "NOTE"]);
        t.row(vec!["gw1".into(), "Ready".into(), "".into()]);
        t.row(vec!["gateway-two".into(), "Error".into(), "x".into()]);
        assert_eq!(
            t.render(),
            "NAME         STATE  NOTE\n\
             gw1          Ready\n\
             gateway-two  Error  x\n"
        );
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn a_block_aligns_its_values() {
        let mut f = Fields::new();
        f.field("name", "cmg1")
            .field("service name", "cmg.contoso.test")
            .field("roots", "CN=a\nCN=b")
            .field("empty", "");
        assert_eq!(
            f.render(),
            "name:          cmg1\n\
             service name:  cmg.contoso.test\n\
             roots:         CN=a\n\
             \x20              CN=b\n\
             empty:\n"
        );
        assert_eq!(list::<&str>(&[]), "-");
        assert_eq!(list(&["a", "b"]), "a, b");
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1_500_000_000), "1.50 GB");
    }

    #[test]
    fn times_are_rfc3339_in_a_time_zone_and_ages() {
        let utc = chrono::Utc;
        assert_eq!(time_in(0, &utc), "1970-01-01T00:00:00Z");
        assert_eq!(time_in(1_796_617_260, &utc), "2026-12-07T04:21:00Z");
        let east = chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("offset");
        assert_eq!(time_in(1_796_617_260, &east), "2026-12-07T09:51:00+05:30");
        assert_eq!(age(100, 145), "45 s ago");
        assert_eq!(age(0, 720), "12 min ago");
        assert_eq!(age(0, 5 * 3600), "5 h ago");
        assert_eq!(age(0, 3 * 86_400), "3 d ago");
        assert_eq!(age(3 * 86_400, 0), "in 3 d");
        assert!(when(0, 60).ends_with(" (60 s ago)"), "{}", when(0, 60));
    }

    #[test]
    fn an_error_line_keeps_each_cause_once() {
        // Like a thiserror `#[error("reading {path}: {source}")]`: shows its io cause and
        // returns it as source.
        #[derive(Debug)]
        struct Reading(std::io::Error);
        impl std::fmt::Display for Reading {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading site.toml: {}", self.0)
            }
        }
        impl std::error::Error for Reading {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(Reading(io)).context("starting the gateway");
        assert_eq!(
            error(&e),
            "starting the gateway: reading site.toml: entity not found"
        );
        // `{:#}` repeats it.
        assert_eq!(
            format!("{e:#}"),
            "starting the gateway: reading site.toml: entity not found: entity not found"
        );
    }
}
