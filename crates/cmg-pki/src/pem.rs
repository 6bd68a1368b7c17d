//! Reading certificates, private keys and CRLs from PEM files (and PEM text).
//!
//! Every file error names the path. A file may hold several items (a chain, a root
//! bundle, several CRLs); sections of other kinds are skipped.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::error::PkiError;

fn file_error(path: &Path, err: pem::Error) -> PkiError {
    match err {
        pem::Error::Io(source) => PkiError::Io {
            path: path.to_owned(),
            source,
        },
        other => PkiError::Pem {
            path: path.to_owned(),
            msg: other.to_string(),
        },
    }
}

fn read_all<T: PemObject>(path: &Path) -> Result<Vec<T>, PkiError> {
    T::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))
}

/// All certificates in a PEM file, in file order. A file without any is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = read_all::<CertificateDer<'static>>(path)?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC). A file that
/// group or others may read is refused, naming the fix (`cmg_core::private_file`).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    cmg_core::private_file::check(path).map_err(|e| PkiError::Pem {
        path: path.to_owned(),
        msg: e.to_string(),
    })?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => PkiError::Pem {
            path: path.to_owned(),
            msg: "no private key found".into(),
        },
        other => file_error(path, other),
    })
}

/// Adds every certificate of the PEM file `path` to `roots` as a trust anchor.
pub fn add_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), PkiError> {
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| PkiError::Pem {
            path: path.to_owned(),
            msg: format!("not a usable trust anchor: {e}"),
        })?;
    }
    Ok(())
}

/// All CRLs (`X509 CRL` sections) in a PEM file. A file without any is an error.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let crls = read_all::<CertificateRevocationListDer<'static>>(path)?;
    if crls.is_empty() {
        return Err(PkiError::Pem {
            path: path.to_owned(),
            msg: "no CRL found".into(),
        });
    }
    Ok(crls)
}

/// All certificates in PEM text; at least one.
pub fn parse_certs(pem_text: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::PemData(e.to_string()))?;
    if certs.is_empty() {
        return Err(PkiError::PemData("no certificate found".into()));
    }
    Ok(certs)
}

/// The first private key in PEM text.
pub fn parse_key(pem_text: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem_text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => PkiError::PemData("no private key found".into()),
        other => PkiError::PemData(other.to_string()),
    })
}

/// All CRLs in PEM text; at least one.
pub fn parse_crls(pem_text: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let crls = CertificateRevocationListDer::pem_slice_iter(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::PemData(e.to_string()))?;
    if crls.is_empty() {
        return Err(PkiError::PemData("no CRL found".into()));
    }
    Ok(crls)
}

/// PEM text for `der` under `label` (`CERTIFICATE`, `PRIVATE KEY`, ...), 64 characters a
/// line.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_names_the_path() {
        let err = load_certs(Path::new("/nonexistent/cmg/cert.pem")).expect_err("missing");
        assert!(matches!(err, PkiError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/cmg/cert.pem"));
    }

    #[test]
    fn file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "just some text\n").expect("write");
        assert!(matches!(
            load_certs(&path),
            Err(PkiError::NoCertificate { .. })
        ));
        assert!(matches!(load_key(&path), Err(PkiError::Pem { .. })));
        let mut roots = rustls::RootCertStore::empty();
        assert!(matches!(
            add_roots(&mut roots, &path),
            Err(PkiError::NoCertificate { .. })
        ));
        assert!(matches!(load_crls(&path), Err(PkiError::Pem { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.key");
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        std::fs::write(&path, &key).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_key(&path).expect_err("0644 refused").to_string();
        assert!(
            err.contains(&format!("run `chmod 600 {}`", path.display())),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(load_key(&path).is_ok());
    }

    #[test]
    fn truncated_pem_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write");
        let err = load_certs(&path).expect_err("truncated");
        assert!(matches!(err, PkiError::Pem { .. }), "{err}");
    }

    #[test]
    fn in_memory_parsing_rejects_empty_text() {
        assert!(parse_certs("").is_err());
        assert!(parse_key("").is_err());
        assert!(parse_crls("").is_err());
    }
}
