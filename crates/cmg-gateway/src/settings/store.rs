//! The last good bundle on disk: the signed JWS as received, so it is verified again
//! when read back (a file edited on disk is refused like a forged bundle).

use std::io::Write as _;
use std::path::Path;

use super::SettingsError;

/// Writes `signed` to `path` atomically (temporary file in the same directory, fsync,
/// rename).
pub fn save(path: &Path, signed: &str) -> Result<(), SettingsError> {
    let err = |source| SettingsError::Store {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(signed.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

/// The saved bundle, or `None` when there is none yet.
pub fn load(path: &Path) -> Result<Option<String>, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Store {
            path: path.to_owned(),
            source,
        }),
    }
}
