//! Where the site's database is and how to open its secrets: the options of the two
//! commands that work on the database directly (`init`, `serve`). The admin commands
//! never open it; they go through the API (`api.rs`).

use std::path::{Path, PathBuf};

use clap::Args;
use cmg_site::KeySource;

// Flattened into `init` and `serve`. No doc comment on purpose: clap would show it as
// the help line of a subcommand that has none of its own.
#[derive(Debug, Args)]
pub(super) struct DbArgs {
    /// `sqlite://FILE` or `postgres://USER:PASSWORD@HOST/DB` (default: SQLite file
    /// DIR/site.db).
    #[arg(long, env = "CMG_SITE_DATABASE_URL")]
    database_url: Option<String>,
    /// File with the master key ring: one or more keys (64 hex digits or base64 of 32
    /// bytes) separated by white space, `#` comments; the last seals. Default:
    /// CMG_SITE_MASTER_KEY if set, else DIR/master.key.
    #[arg(long)]
    pub(super) master_key_file: Option<PathBuf>,
}

impl DbArgs {
    /// The database URL: the option, else the SQLite file `DIR/site.db`.
    pub(super) fn url(&self, dir: &Path) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| cmg_site::db::sqlite_url(&dir.join("site.db")))
    }

    /// Where the master key ring is: the option's file, else the environment, else
    /// `DIR/master.key`.
    pub(super) fn key_source(&self, dir: &Path) -> KeySource {
        match &self.master_key_file {
            Some(f) => KeySource::File(f.clone()),
            None if std::env::var_os(cmg_site::secret::MASTER_KEY_ENV).is_some() => KeySource::Env,
            None => KeySource::File(dir.join("master.key")),
        }
    }
}

/// Writes `text` and a newline to `path`, readable by its owner only.
pub(super) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    Ok(cmg_core::private_file::write(
        path,
        format!("{text}\n").as_bytes(),
    )?)
}
