//! Every file under `fixtures/config/valid` loads; every one under `invalid` fails with
//! an error naming the file.

use std::path::{Path, PathBuf};

use cmg_mp::Config;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn valid_configs_load() {
    for path in fixtures("valid") {
        let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.data_dir.is_absolute(), "{}", path.display());
        if let Some(tls) = &config.tls {
            assert_eq!(tls.cert, path.parent().expect("dir").join("pki/mp.pem"));
        }
    }
}

#[test]
fn invalid_configs_fail_naming_the_file() {
    for path in fixtures("invalid") {
        let err = Config::from_file(&path).expect_err(&path.display().to_string());
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
}
