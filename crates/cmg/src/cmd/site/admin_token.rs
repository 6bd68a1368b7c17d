//! The site's admin token: where `serve` and the admin commands read it from (a file or
//! `CMG_SITE_ADMIN_TOKEN`). `init` writes it; nothing here creates one.

use std::path::Path;

use anyhow::{bail, Context as _};
use cmg_site::Secret;

/// The environment variable that may hold the admin token.
pub(super) const ENV: &str = "CMG_SITE_ADMIN_TOKEN";

/// The token from `file`, else from [`ENV`], else from `DIR/admin.token`.
pub(super) fn load(dir: &Path, file: Option<&Path>) -> anyhow::Result<Secret> {
    let file = match file {
        Some(f) => f.to_owned(),
        None => {
            if let Ok(t) = std::env::var(ENV) {
                return Ok(Secret::new(t.trim()));
            }
            dir.join("admin.token")
        }
    };
    let text = cmg_core::private_file::read_to_string(&file)
        .with_context(|| format!("reading the admin token from {}", file.display()))?;
    let t = text.trim();
    if t.len() < 16 {
        bail!(
            "the admin token in {} is shorter than 16 characters",
            file.display()
        );
    }
    Ok(Secret::new(t))
}
