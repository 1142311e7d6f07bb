//! Compiling plugins out of the host's process, and the bounds on what compiling takes:
//! the file's bytes, the compile's time and its memory.

use super::support::plugin;
use adstream::plugin::{CompileChild, LoadError, MAX_COMPONENT_BYTES, Plugin, PluginEngine, Role};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_adstream");

/// The real compiler, in `memory` bytes of address space.
fn real(memory: u64) -> CompileChild {
    CompileChild::new(BIN.into(), Duration::from_secs(30), memory)
}

fn engine(cache: &Path, child: CompileChild) -> PluginEngine {
    PluginEngine::with_cache_dir(Some(cache))
        .unwrap()
        .compile_in(Some(child))
        .unwrap()
}

/// A compile child that runs `body` (a shell script) instead of compiling.
fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("child.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The real compiler, behind a script that adds a line to `marks` at each run.
fn counted(dir: &Path, marks: &Path) -> CompileChild {
    let body = format!("echo run >> {}\nexec {BIN} \"$@\"", marks.display());
    CompileChild::new(script(dir, &body), Duration::from_secs(30), 1 << 30)
}

/// The files of compiled code in the on-disk cache `dir`.
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("cwasm".as_ref()))
        .count()
}

#[test]
fn a_compile_child_fills_the_cache_under_the_key_the_host_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let marks = dir.path().join("marks");
    let engine = engine(&cache, counted(dir.path(), &marks));
    for metered in [false, true] {
        let p = engine.load(&plugin("pii_hash"), metered).unwrap();
        assert_eq!(p.role(), Role::Transform);
        let inst = p.instantiate("t".into(), &Default::default(), 0).unwrap();
        assert_eq!(inst.info().name, "pii-hash");
    }
    let runs = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(runs.lines().count(), 2, "one child per engine setting");
    // Had the host not found what the child compiled, it would have compiled again and
    // written entries of its own under other keys.
    assert_eq!(entries(&cache), 2);
}

#[test]
fn without_a_lasting_cache_compiled_code_comes_through_a_scratch_one() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    let engine = PluginEngine::with_cache_dir(None)
        .unwrap()
        .compile_in(Some(counted(dir.path(), &marks)))
        .unwrap();
    let p = engine.load(&plugin("quality"), false).unwrap();
    assert_eq!(p.role(), Role::Validate);
    assert_eq!(std::fs::read_to_string(&marks).unwrap().lines().count(), 1);
}

#[test]
fn a_component_that_does_not_compile_fails_in_the_child_with_the_reason_the_host_gives() {
    let dir = tempfile::tempdir().unwrap();
    let here = PluginEngine::with_cache_dir(None).unwrap();
    let there = engine(dir.path(), real(1 << 30));
    for bytes in [&b"not wasm at all"[..], b"\0asm\x01\0\0\0"] {
        let path = Path::new("bad.wasm");
        let want = here.load_bytes(path, bytes, false).err().unwrap();
        let got = there.load_bytes(path, bytes, false).err().unwrap();
        assert!(matches!(got, LoadError::Compile { .. }), "{got}");
        assert_eq!(got.to_string(), want.to_string());
    }
    assert_eq!(entries(dir.path()), 0);
}

#[test]
fn a_compile_over_its_deadline_is_stopped_and_the_plugin_refused() {
    let dir = tempfile::tempdir().unwrap();
    let child = script(dir.path(), "sleep 30");
    let engine = engine(
        dir.path(),
        CompileChild::new(child, Duration::from_millis(300), 1 << 30),
    );
    let t = std::time::Instant::now();
    let err = engine.load(&plugin("quality"), false).err().unwrap();
    assert!(
        err.to_string().contains("compiling took longer than 300ms"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the child was not stopped"
    );
}

#[test]
fn a_compile_over_its_memory_is_stopped_and_the_plugin_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = engine(dir.path(), real(MEMORY_TOO_SMALL))
        .load(&plugin("window_aggregate"), false)
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    assert!(
        err.to_string().contains("it may use at most 56 MiB"),
        "{err}"
    );
    assert_eq!(entries(dir.path()), 0, "{err}");
    // The same compile with room succeeds.
    engine(dir.path(), real(1 << 30))
        .load(&plugin("window_aggregate"), false)
        .unwrap();
}

/// Address space in which the compiler starts but cannot finish: the child takes about
/// 48 MiB of it before reading its input (the executable, with the shipped plugins it
/// embeds, and libraries mapped; measured 2026-12-07 with `adstream compile-plugin
/// --memory`: 48 MiB fails reading, 52–60 MiB fail compiling, 64 MiB compiles). Should
/// the executable grow past it, the child fails reading its input instead, and the
/// message check above says so.
const MEMORY_TOO_SMALL: u64 = 56 << 20;

#[test]
fn a_plugin_file_over_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.wasm");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_COMPONENT_BYTES as u64 + 1).unwrap();
    let err = PluginEngine::new()
        .unwrap()
        .load(&path, false)
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("is larger than the 32 MiB a plugin may be"),
        "{err}"
    );
}

#[test]
fn a_pipelines_plugins_compile_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, runs) = (dir.path().join("cache"), dir.path().join("runs"));
    std::fs::create_dir(&runs).unwrap();
    // Each child marks its start and waits (up to 10 s) until two children have started,
    // then writes how many had. Compiled one after another, the first finds itself alone.
    let body = format!(
        "touch {r}/$$\n\
         for i in $(seq 100); do [ $(ls {r} | wc -l) -ge 2 ] && break; sleep 0.1; done\n\
         ls {r} | wc -l > {r}.seen.$$\n\
         exec {BIN} \"$@\"",
        r = runs.display()
    );
    let child = CompileChild::new(script(dir.path(), &body), Duration::from_secs(30), 1 << 30);
    let demo = super::support::root().join("pipelines/demo.toml");
    let cfg = adstream::config::load(&demo).unwrap_or_else(|d| panic!("{d:#?}"));
    let built = adstream::pipeline::build(&cfg, &engine(&cache, child));
    assert_eq!(built.map(|p| p.stages.len()).ok(), Some(6));
    let seen: Vec<usize> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("runs.seen."))
        .map(|p| std::fs::read_to_string(p).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(seen.len(), 5, "a child for each of the demo's five plugins");
    assert!(
        seen.iter().all(|&n| n >= 2),
        "a child compiled alone: {seen:?}"
    );
}
