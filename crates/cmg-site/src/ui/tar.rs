//! A POSIX tar archive (ustar) of a few small files: what the console hands out as a
//! download (an instance's deployment package, a new connection point's files), so
//! `tar xf` gives the same files `cmg site` writes, secret ones with mode 0600.
//!
//! It writes flat archives of regular files only; names are at most 100 bytes.

use crate::model::ExportFile;

const BLOCK: usize = 512;

fn octal(field: &mut [u8], value: u64) {
    // Digits, then NUL: `len - 1` octal digits, zero-padded.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(text);
    field[digits] = 0;
}

/// The archive of `files` under the folder `dir` (a name, not a path), dated `mtime`.
pub fn archive(dir: &str, files: &[ExportFile], mtime: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        let name = format!("{dir}/{}", f.name);
        let mut h = [0u8; BLOCK];
        let n = name.as_bytes();
        let n = &n[..n.len().min(100)];
        h[..n.len()].copy_from_slice(n);
        octal(&mut h[100..108], if f.secret { 0o600 } else { 0o644 });
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], f.content.len() as u64);
        octal(&mut h[136..148], mtime.max(0) as u64);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum);
        h[155] = b' ';
        out.extend_from_slice(&h);
        out.extend_from_slice(f.content.as_bytes());
        let pad = (BLOCK - f.content.len() % BLOCK) % BLOCK;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_reads_what_it_writes() {
        let files = vec![
            ExportFile {
                name: "a.toml".into(),
                content: "x = 1\n".into(),
                secret: false,
            },
            ExportFile {
                name: "k.key".into(),
                content: "secret".repeat(100),
                secret: true,
            },
        ];
        let bytes = archive("pkg", &files, 1_700_000_000);
        assert_eq!(bytes.len() % BLOCK, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tar");
        std::fs::write(&path, &bytes).expect("write");
        let out = std::process::Command::new("tar")
            .arg("xf")
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .expect("run tar");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |n: &str| std::fs::read_to_string(dir.path().join("pkg").join(n)).expect(n);
        assert_eq!(read("a.toml"), "x = 1\n");
        assert_eq!(read("k.key"), "secret".repeat(100));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("pkg/k.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
