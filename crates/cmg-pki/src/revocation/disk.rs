//! The on-disk copy of fetched CRLs, so a restarted gateway can check revocation
//! before (or without) reaching the distribution points, until each CRL's nextUpdate.
//!
//! One pair of files per URL, named by the SHA-256 of the URL: `<hash>.crl` (the DER
//! as received) and `<hash>.url` (the URL). The OCSP answers use the same layout in
//! their own directory, keyed by the hex `CertID` instead of a URL, with `.ocsp` data
//! files. Each is written to a temporary name and
//! renamed, so a crash leaves the old copy or the new one, never half a file. What is
//! read back is parsed like a fetched CRL; an unreadable pair is skipped with a warning.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
    /// Extension of the data files: `crl` or `ocsp`.
    ext: &'static str,
}

impl DiskCache {
    /// Uses `dir` for CRLs, creating it when missing.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_ext(dir, "crl")
    }

    /// Uses `dir`, creating it when missing, with `ext` data files.
    pub fn open_ext(dir: &Path, ext: &'static str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            ext,
        })
    }

    fn stem(url: &str) -> String {
        hex::encode(&Sha256::digest(url.as_bytes())[..16])
    }

    /// Every `(url, bytes)` pair stored, at most `max` of them.
    pub fn load(&self, max: usize) -> Vec<(String, Vec<u8>)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("url") {
                continue;
            }
            if out.len() >= max {
                tracing::warn!(target: "cmg_pki", dir = %self.dir.display(), max, "CRL cache holds more entries than allowed; ignoring the rest");
                break;
            }
            let read = std::fs::read_to_string(&path).and_then(|url| {
                let url = url.trim().to_owned();
                if Self::stem(&url) != path.file_stem().and_then(|s| s.to_str()).unwrap_or("") {
                    return Err(io::Error::other("file name does not match its URL"));
                }
                let der = std::fs::read(path.with_extension(self.ext))?;
                Ok((url, der))
            });
            match read {
                Ok(pair) => out.push(pair),
                Err(e) => {
                    tracing::warn!(target: "cmg_pki", file = %path.display(), error = %e, "skipping unreadable CRL cache entry")
                }
            }
        }
        out
    }

    /// Stores the CRL received from `url`, replacing the previous copy.
    pub fn store(&self, url: &str, der: &[u8]) -> io::Result<()> {
        let stem = Self::stem(url);
        write_atomic(&self.dir.join(format!("{stem}.{}", self.ext)), der)?;
        write_atomic(&self.dir.join(format!("{stem}.url")), url.as_bytes())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DiskCache::open(&dir.path().join("crls")).expect("open");
        cache.store("http://a/1.crl", b"one").expect("store");
        cache.store("http://a/2.crl", b"two").expect("store");
        cache.store("http://a/1.crl", b"uno").expect("replace");
        let mut got = cache.load(10);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("http://a/1.crl".to_owned(), b"uno".to_vec()),
                ("http://a/2.crl".to_owned(), b"two".to_vec())
            ]
        );
        assert_eq!(cache.load(1).len(), 1);
        // A .url file whose content does not hash to its name is ignored.
        let stem = DiskCache::stem("http://a/2.crl");
        std::fs::write(
            dir.path().join("crls").join(format!("{stem}.url")),
            "http://evil/",
        )
        .expect("tamper");
        assert_eq!(cache.load(10).len(), 1);
    }
}
