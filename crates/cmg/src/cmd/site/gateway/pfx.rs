//! Reading a `.pfx` (PKCS#12) server certificate for `cmg site gateway create|modify --pfx`: the chain
//! and key as PEM, the password from an environment variable. The reader is cmg-pki's,
//! compiled in with the `pkcs12` cargo feature (on by default); a build without it
//! refuses `--pfx` and says how to convert the file to PEM instead.

use std::path::Path;

/// The server certificate chain (leaf first) and its private key in `pfx`, as PEM.
#[cfg(feature = "pkcs12")]
pub(super) fn read_pem(pfx: &Path, password_env: &str) -> anyhow::Result<(String, String)> {
    use anyhow::Context as _;
    let bytes = std::fs::read(pfx).with_context(|| format!("read {}", pfx.display()))?;
    let password = std::env::var(password_env).with_context(|| {
        format!("--pfx needs its password in the environment variable {password_env}")
    })?;
    let id = cmg_pki::pkcs12::read_pkcs12(&bytes, &password)
        .with_context(|| format!("{}", pfx.display()))?;
    Ok((id.chain_pem, id.key_pem))
}

/// Without the `pkcs12` feature: a clear refusal.
#[cfg(not(feature = "pkcs12"))]
pub(super) fn read_pem(pfx: &Path, _password_env: &str) -> anyhow::Result<(String, String)> {
    anyhow::bail!(
        "{}: this cmg was built without PKCS#12 support (cargo feature `pkcs12`); \
         convert the file with `openssl pkcs12 -in FILE -nokeys -out cert.pem` and \
         `openssl pkcs12 -in FILE -nocerts -nodes -out key.pem`, then give --cert and --key",
        pfx.display()
    )
}

#[cfg(all(test, not(feature = "pkcs12")))]
mod tests {
    #[test]
    fn without_the_feature_pfx_is_refused_with_the_way_out() {
        let err = super::read_pem(std::path::Path::new("server.pfx"), "CMG_PFX_PASSWORD")
            .expect_err("no PKCS#12 reader");
        let text = err.to_string();
        assert!(text.contains("server.pfx"), "{text}");
        assert!(text.contains("--cert and --key"), "{text}");
    }
}
