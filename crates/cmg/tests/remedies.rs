//! Every `cmg …` command that the analyzer's remedies, the console's pages and the
//! roles' error messages tell an administrator to run exists: its subcommands parse (`--help` succeeds) and each
//! option written right after them is one the command has. A remedy naming a command
//! that was renamed or never existed (`gateway update` for `gateway modify`) fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where remedies, hints and error messages are written.
const SOURCES: &[&str] = &[
    "../cmg-analyze/src",
    "../cmg-site/src",
    "../cmg/src",
    "../cmg-connector/src",
    "../cmg-gateway/src",
    "../cmg-agent/src",
    "../cmg-core/src",
    "../cmg-pki/src",
];

/// The top-level commands a hint may name.
/// (`gateway`, `client` and `demo` are left out: "a cmg gateway instance", "a cmg client
/// state file", "the cmg demo root CA" are prose far more often than commands.)
const ROOTS: &[&str] = &["site", "cert", "connector", "mp"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A command named in a hint: its subcommand words and the options written after them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Named {
    words: Vec<String>,
    options: Vec<String>,
}

/// The commands named in `text`: `cmg` followed by a known root, then lower-case words
/// (subcommands, all of which must exist) and `--options`; anything else (a placeholder
/// such as `NAME`, a value, punctuation) ends the command.
fn named(text: &str) -> Vec<Named> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("cmg ") {
        let after = &rest[i + 4..];
        rest = after;
        let mut words = Vec::new();
        let mut options = Vec::new();
        for token in after.split([' ', '\n']).filter(|t| !t.is_empty()) {
            let clean = token.trim_end_matches([')', ',', '.', ';', ':', '"', '`']);
            let is_word = !clean.is_empty()
                && clean.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !clean.starts_with('-');
            if words.is_empty() && !ROOTS.contains(&clean) {
                break;
            }
            if options.is_empty() && is_word {
                words.push(clean.to_owned());
            } else if let Some(opt) = clean.strip_prefix("--") {
                if !opt.is_empty() && opt.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                    options.push(format!("--{opt}"));
                }
            } else {
                break;
            }
            if clean.len() != token.len() {
                break; // punctuation closed the command
            }
        }
        if !words.is_empty() {
            found.push(Named { words, options });
        }
    }
    found
}

#[test]
fn the_parser_finds_words_and_options() {
    let got = named("run (cmg site gateway modify --cert --key), then cmg site alert clear NAME");
    assert_eq!(
        got,
        vec![
            Named {
                words: vec!["site".into(), "gateway".into(), "modify".into()],
                options: vec!["--cert".into(), "--key".into()],
            },
            Named {
                words: vec!["site".into(), "alert".into(), "clear".into()],
                options: vec![],
            },
        ]
    );
    assert!(named("the cmg gateway instance answers").is_empty());
    assert!(named("no cmg here, cmg Foo").is_empty());
}

#[test]
fn every_command_a_remedy_names_exists() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SOURCES {
        rust_files(&manifest.join(dir), &mut files);
    }
    let mut commands: Vec<Named> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        commands.extend(named(&text));
    }
    commands.sort();
    commands.dedup();
    assert!(
        commands.len() >= 10,
        "expected the remedies to name commands, found {commands:?}"
    );
    let mut wrong = Vec::new();
    for c in &commands {
        let out = Command::new(env!("CARGO_BIN_EXE_cmg"))
            .args(&c.words)
            .arg("--help")
            .env("NO_COLOR", "1")
            .output()
            .expect("run cmg");
        if !out.status.success() {
            wrong.push(format!("cmg {}: no such command", c.words.join(" ")));
            continue;
        }
        let help = String::from_utf8_lossy(&out.stdout);
        for o in &c.options {
            if !help.contains(&format!("{o} ")) && !help.contains(&format!("{o}\n")) {
                wrong.push(format!("cmg {} has no option {o}", c.words.join(" ")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "hints name commands that do not exist:\n{}",
        wrong.join("\n")
    );
}
