//! Loading the real plugin components and calling them through the host.

use super::support::plugin;
use adstream::plugin::{LoadError, Plugin, PluginEngine, Role};
use std::path::Path;

#[test]
fn each_reference_plugin_loads_with_its_role_and_identity() {
    let engine = PluginEngine::new().unwrap();
    let cases = [
        ("pii_hash", Role::Transform, "pii-hash"),
        ("quality", Role::Validate, "quality"),
        ("window_aggregate", Role::Aggregate, "window-aggregate"),
        ("anomaly_ema", Role::Detect, "anomaly-ema"),
        ("slack_format", Role::Format, "slack-format"),
    ];
    for (file, role, name) in cases {
        let p = engine.load(&plugin(file), false).unwrap();
        assert_eq!(p.role(), role, "{file}");
        assert_eq!(p.hash().len(), 64);
        let inst = p.instantiate("t".into(), &Default::default(), 0).unwrap();
        assert_eq!(inst.info().name, name);
        assert_eq!(inst.info().version, "0.1.0");
    }
}

#[test]
fn files_that_are_not_plugins_are_refused_with_the_reason() {
    let engine = PluginEngine::new().unwrap();
    let err = engine
        .load(Path::new("/nonexistent/x.wasm"), false)
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
    let junk = engine
        .load_bytes(Path::new("junk.wasm"), b"not wasm at all", false)
        .err()
        .unwrap();
    assert!(matches!(junk, LoadError::Compile { .. }), "{junk}");
    // A core module (not a component): `(module)` in binary form.
    let core = engine
        .load_bytes(Path::new("core.wasm"), b"\0asm\x01\0\0\0", false)
        .err()
        .unwrap();
    assert!(
        core.to_string()
            .contains("core.wasm is not a valid WebAssembly component"),
        "{core}"
    );
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn compiled_plugins_are_kept_on_disk_and_a_damaged_entry_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let load = || {
        let engine = PluginEngine::with_cache_dir(Some(dir.path())).unwrap();
        let p = engine.load(&plugin("pii_hash"), false).unwrap();
        let metered = engine.load(&plugin("pii_hash"), true).unwrap();
        (p, metered)
    };
    drop(load());
    // One entry per engine setting: plain and fuel-metered code differ.
    let entries: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let good: Vec<Vec<u8>> = entries.iter().map(|e| std::fs::read(e).unwrap()).collect();
    // One flipped bit in the middle of the code: a file that still maps and would run.
    let mut flipped = good[0].clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    std::fs::write(&entries[0], &flipped).unwrap();
    std::fs::write(&entries[1], b"not compiled code").unwrap();
    let (p, metered) = load();
    for p in [p, metered] {
        let inst = p.instantiate("t".into(), &Default::default(), 0).unwrap();
        assert_eq!(inst.info().name, "pii-hash");
    }
    // The damaged entries were compiled again: the same code as at first.
    for (e, good) in entries.iter().zip(&good) {
        assert!(
            std::fs::read(e).unwrap() == *good,
            "{} was kept",
            e.display()
        );
    }
}
