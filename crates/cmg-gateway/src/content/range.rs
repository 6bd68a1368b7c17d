//! The `Range` request header, single byte ranges only (RFC 9110 §14): `bytes=a-b`,
//! `bytes=a-` and `bytes=-n`. Anything else (several ranges, other units, bad syntax)
//! is ignored and the whole blob is served, as RFC 9110 allows.

use std::ops::Range;

/// One requested byte range, before the blob's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` (inclusive) or `a-` (`end: None`).
    From { start: u64, end: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a `Range` header value; `None` when it is to be ignored.
pub fn parse(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if a.is_empty() {
        return Some(ByteRange::Suffix(num(b)?));
    }
    let start = num(a)?;
    let end = if b.is_empty() { None } else { Some(num(b)?) };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(ByteRange::From { start, end })
}

impl ByteRange {
    /// The half-open byte range of a blob of `size` bytes, or `None` when it is not
    /// satisfiable (416).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::From { start, end } => {
                if start >= size {
                    return None;
                }
                let last = end.map_or(size - 1, |e| e.min(size - 1));
                Some(start..last + 1)
            }
            Self::Suffix(0) => None,
            Self::Suffix(n) => {
                if size == 0 {
                    return None;
                }
                Some(size.saturating_sub(n)..size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_ranges_and_ignores_the_rest() {
        assert_eq!(
            parse("bytes=0-99"),
            Some(ByteRange::From {
                start: 0,
                end: Some(99)
            })
        );
        assert_eq!(
            parse("bytes=100-"),
            Some(ByteRange::From {
                start: 100,
                end: None
            })
        );
        assert_eq!(parse("bytes=-5"), Some(ByteRange::Suffix(5)));
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "",
        ] {
            assert_eq!(parse(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn resolves_against_the_size() {
        let r = |s: &str, size| parse(s).and_then(|r| r.resolve(size));
        assert_eq!(r("bytes=0-99", 1000), Some(0..100));
        assert_eq!(r("bytes=990-2000", 1000), Some(990..1000));
        assert_eq!(r("bytes=999-", 1000), Some(999..1000));
        assert_eq!(r("bytes=1000-", 1000), None);
        assert_eq!(r("bytes=-10", 1000), Some(990..1000));
        assert_eq!(r("bytes=-5000", 1000), Some(0..1000));
        assert_eq!(r("bytes=-0", 1000), None);
        assert_eq!(r("bytes=0-0", 0), None);
        assert_eq!(r("bytes=-1", 0), None);
    }
}
