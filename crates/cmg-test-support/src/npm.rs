//! Installs a test package from its committed npm lock file (`npm ci`) when its
//! `node_modules` is missing. Does not update lock files or reach for anything else.

use std::path::Path;
use std::sync::Mutex;

/// Serialises installs within a test binary: tests run on parallel threads, and two
/// `npm ci` in one folder would delete each other's work.
static INSTALL: Mutex<()> = Mutex::new(());

/// Runs `npm ci` in `dir` unless `node_modules/<package>` is there already.
pub(crate) fn ensure_installed(dir: &Path, package: &str) -> Result<(), String> {
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let marker = dir.join("node_modules").join(package).join("package.json");
    if marker.is_file() {
        return Ok(());
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm ci failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !marker.is_file() {
        return Err(format!(
            "npm ci succeeded but {} is missing",
            marker.display()
        ));
    }
    Ok(())
}
