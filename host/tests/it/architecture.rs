//! The module structure the host promises in ARCHITECTURE.md, checked over the sources:
//! layers import only downwards, no two files import each other in a cycle, and no file
//! grows past what one can read in a sitting.

use super::support::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each layer and the layers it may import, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("batch", &["config"]),
    ("plugin", &["config", "batch"]),
    ("connect", &["config"]),
    ("sources", &["config", "batch", "connect"]),
    ("sinks", &["config", "batch", "connect"]),
    (
        "pipeline",
        &["config", "batch", "plugin", "connect", "sources", "sinks"],
    ),
    (
        "supervisor",
        &[
            "config", "batch", "plugin", "connect", "sources", "sinks", "pipeline",
        ],
    ),
    (
        "cli",
        &[
            "config",
            "batch",
            "plugin",
            "connect",
            "sources",
            "sinks",
            "pipeline",
            "supervisor",
        ],
    ),
];

const MAX_LINES: usize = 400;

fn src() -> PathBuf {
    root().join("host/src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `pipeline/stage/mod.rs` → [pipeline, stage].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file of the deepest module that `path` (from the crate root) names.
fn resolve(path: &[String]) -> Option<PathBuf> {
    let (mut dir, mut found) = (src(), None);
    for seg in path {
        let (file, sub) = (dir.join(format!("{seg}.rs")), dir.join(seg).join("mod.rs"));
        if file.is_file() {
            found = Some(file);
        } else if sub.is_file() {
            found = Some(sub);
        } else {
            break;
        }
        dir = dir.join(seg);
    }
    found
}

/// Expands `a::{b::c, d}` into every path it names.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let base = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], &base, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand(&inner[start..], &base, out);
    }
}

/// Every module path a file refers to, absolute from the crate root: in `use` trees and
/// inline (`crate::a::f()`, `super::b::C`), in the file's own code — not in its comments or
/// its test module, whose `super` is the file itself.
fn references(file: &Path, text: &str) -> Vec<Vec<String>> {
    let module = module_of(file);
    let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or(text);
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    for stmt in code.split(';') {
        if let Some(i) = stmt.find("use ") {
            let tree = stmt[i + 4..].trim();
            if tree.starts_with("crate::")
                || tree.starts_with("super::")
                || tree.starts_with("self::")
            {
                expand(tree, "", &mut paths);
            }
        }
    }
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            // The start of a path only: not `super::` inside `super::super::`, nor a
            // name that ends in the word.
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c == ':' || c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest: String = code[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(rest);
        }
    }
    paths
        .iter()
        .filter_map(|p| {
            let segs: Vec<&str> = p
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let mut abs: Vec<String> = Vec::new();
            let mut it = segs.iter().peekable();
            match it.peek().copied() {
                Some(&"crate") => {
                    it.next();
                }
                Some(&"self") => {
                    it.next();
                    abs = module.clone();
                }
                Some(&"super") => {
                    abs = module.clone();
                    while it.peek() == Some(&&"super") {
                        it.next();
                        abs.pop();
                    }
                }
                _ => return None,
            }
            abs.extend(it.map(|s| s.to_string()));
            Some(abs)
        })
        .collect()
}

/// Strongly connected components of more than one file (the graph is small, so plain
/// reachability sets will do).
fn cycles(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<BTreeSet<PathBuf>> {
    let reach = |from: &PathBuf| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(f) = todo.pop() {
            for g in graph.get(&f).into_iter().flatten() {
                if seen.insert(g.clone()) {
                    todo.push(g.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        graph.keys().map(|f| (f, reach(f))).collect();
    let mut out: Vec<BTreeSet<PathBuf>> = Vec::new();
    for (f, r) in &reaches {
        if !r.contains(*f) || out.iter().any(|c| c.contains(*f)) {
            continue;
        }
        let scc: BTreeSet<PathBuf> = r
            .iter()
            .filter(|g| reaches.get(g).is_some_and(|back| back.contains(*f)))
            .cloned()
            .collect();
        if scc.len() > 1 {
            out.push(scc);
        }
    }
    out
}

#[test]
fn layers_import_only_downwards_files_form_no_cycle_and_stay_small() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let (mut upward, mut long) = (Vec::new(), Vec::new());
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &all {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(src()).unwrap().to_path_buf();
        if text.lines().count() > MAX_LINES {
            long.push(format!(
                "{} has {} lines",
                rel.display(),
                text.lines().count()
            ));
        }
        let module = module_of(file);
        for target in references(file, &text) {
            let (Some(from), Some(to)) = (module.first(), target.first()) else {
                continue;
            };
            if let Some(ok) = allowed.get(from.as_str())
                && from != to
                && allowed.contains_key(to.as_str())
                && !ok.contains(&to.as_str())
            {
                upward.push(format!(
                    "{} imports crate::{}",
                    rel.display(),
                    target.join("::")
                ));
            }
            let Some(dest) = resolve(&target) else {
                continue;
            };
            // A module's façade (mod.rs) may name its own children.
            let facade_child = file.ends_with("mod.rs") && dest.starts_with(file.parent().unwrap());
            if dest != *file && !facade_child {
                graph.entry(file.clone()).or_default().insert(dest);
            }
        }
    }
    let cycles: Vec<String> = cycles(&graph)
        .iter()
        .map(|c| {
            c.iter()
                .map(|f| f.strip_prefix(src()).unwrap().display().to_string())
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports against the layers of ARCHITECTURE.md:\n{}",
        upward.join("\n")
    );
    assert!(
        cycles.is_empty(),
        "files that import each other in a cycle:\n{}",
        cycles.join("\n")
    );
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import_and_a_cycle() {
    let file = src().join("sinks/fake.rs");
    let refs = references(
        &file,
        "use crate::pipeline::{run::X, stage};\nuse super::redis::Y;\nfn f() { crate::plugin::Z; super::kafka::open(super::super::batch::B) }\n#[cfg(test)]\nmod tests { use super::super::cli::T; }",
    );
    let flat: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
    // Inline paths count, `super::super::` whole; the test module does not.
    assert!(flat.contains(&"sinks::kafka::open".to_string()), "{flat:?}");
    assert!(flat.contains(&"batch::B".to_string()), "{flat:?}");
    assert!(!flat.iter().any(|f| f.contains("cli")), "{flat:?}");
    assert!(flat.contains(&"pipeline::run::X".to_string()), "{flat:?}");
    assert!(flat.contains(&"pipeline::stage".to_string()), "{flat:?}");
    assert!(flat.contains(&"sinks::redis::Y".to_string()), "{flat:?}");
    assert!(flat.contains(&"plugin::Z".to_string()), "{flat:?}");
    let (a, b) = (PathBuf::from("a"), PathBuf::from("b"));
    let graph = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert_eq!(cycles(&graph).len(), 1);
}
