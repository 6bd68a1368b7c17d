//! The crate's modules import each other strictly downward: the graph of top-level
//! modules (an edge for every `crate::<module>` a file of another module names) has
//! no cycle. Read from the source text, so a new upward import fails here with the
//! cycle it closes, before it tangles the crate again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module of a file under `src/` (`lib` for lib.rs itself).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Module names that follow `crate::` in `text`, test code left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        // `use crate::{a, b::c}`
        if let Some(list) = rest.strip_prefix('{') {
            let list = list.split('}').next().unwrap_or("");
            for item in list.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    found.insert(name.to_owned());
                }
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" || from == "testing" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        let to = edges.entry(from.clone()).or_default();
        for m in imports(&text) {
            if m != from && modules.contains(&m) && m != "lib" {
                to.insert(m);
            }
        }
    }
    edges
}

/// A cycle through `node`, if there is one (depth-first search).
fn cycle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(pos) = path.iter().position(|n| n == node) {
        let mut c = path[pos..].to_vec();
        c.push(node.to_owned());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = cycle(edges, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn modules_import_downward_only() {
    let edges = graph();
    assert!(edges.len() > 10, "found too few modules: {edges:?}");
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = cycle(&edges, node, &mut Vec::new(), &mut done) {
            panic!(
                "module import cycle: {}\nall edges: {edges:#?}",
                c.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_finds_a_cycle() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    let found = cycle(&edges, "a", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(found, Some(vec!["a".into(), "b".into(), "a".into()]));
    assert_eq!(
        imports("use crate::{state::Gateway, error};\nx: crate::tls::X"),
        BTreeSet::from(["state".into(), "error".into(), "tls".into()])
    );
}
