//! Two-stage config loading: a serde `Raw*` type with `deny_unknown_fields` read from a
//! TOML file, then each role's `TryFrom` into its validated `Config`. This module does
//! the first stage and the error type both stages report through.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A config error that names the file and, where known, the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, unknown field, or wrong type; the message names the key and line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value that parsed but is not valid.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `field` of the file at `path`.
    pub fn invalid(path: &Path, field: impl Into<String>, message: impl ToString) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Reads and parses `path` as TOML into `T` (use `#[serde(deny_unknown_fields)]` on `T`).
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(path, &text)
}

/// Parses `text` as TOML into `T`; `path` only names the source in errors.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

/// Resolves a path from a config file relative to the file's directory.
pub fn resolve(config_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        config_path
            .parent()
            .map(|d| d.join(p))
            .unwrap_or_else(|| p.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Raw {
        name: String,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<std::time::Duration>,
    }

    #[test]
    fn unknown_field_names_field_and_file() {
        let err = parse_toml::<Raw>(Path::new("/etc/x.toml"), "name = 'a'\nbogus = 1\n")
            .expect_err("unknown field");
        let msg = err.to_string();
        assert!(msg.contains("/etc/x.toml"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn durations_parse_humanly() {
        let raw: Raw = parse_toml(Path::new("x"), "name = 'a'\ntimeout = '1m 30s'\n").expect("ok");
        assert_eq!(raw.timeout, Some(std::time::Duration::from_secs(90)));
    }

    #[test]
    fn relative_paths_resolve_next_to_the_file() {
        assert_eq!(
            resolve(Path::new("/etc/cmg/gw.toml"), Path::new("pki/a.pem")),
            PathBuf::from("/etc/cmg/pki/a.pem")
        );
        assert_eq!(
            resolve(Path::new("/etc/gw.toml"), Path::new("/a")),
            PathBuf::from("/a")
        );
    }
}
