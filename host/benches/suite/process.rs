//! What a user sees of the binary: how long `adstream check` takes with the compiled-plugin
//! cache empty and filled, and the demo's resident memory.

use super::report::{Section, repeat};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_adstream");

fn demo_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/demo.toml")
}

/// Seconds `adstream check pipelines/demo.toml` takes with its compile cache in `cache`.
fn check(cache: &Path) -> f64 {
    let t = Instant::now();
    let out = Command::new(BIN)
        .arg("check")
        .arg(demo_file())
        .env("ADSTREAM_COMPILE_CACHE", cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    t.elapsed().as_secs_f64()
}

pub fn startup(dir: &Path, n: usize) -> Section {
    let mut runs = 0;
    let cold = repeat(n, || {
        runs += 1;
        check(&dir.join(format!("cold-{runs}")))
    });
    let warm_dir = dir.join("warm");
    check(&warm_dir);
    let warm = repeat(n, || check(&warm_dir));
    Section {
        title: "Start-up",
        about: format!(
            "`adstream check pipelines/demo.toml` (reads the file, loads and configures its six \
             plugins), as a process, with an empty compile cache and with a filled one. \
             Seconds, median (min–max) of {n} runs."
        ),
        header: vec!["compile cache", "seconds"],
        rows: vec![
            vec!["empty (cold)".into(), cold.show(3)],
            vec!["filled (warm)".into(), warm.show(3)],
        ],
    }
}

/// The highest resident memory of process `pid` so far, in bytes.
fn peak(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb << 10)
}

/// The peak resident memory of `child` until it exits, in MiB, read every `every`.
fn watch_peak(mut child: std::process::Child, every: Duration) -> f64 {
    let mut seen = 0;
    while child.try_wait().unwrap().is_none() {
        seen = peak(child.id()).unwrap_or(seen).max(seen);
        std::thread::sleep(every);
    }
    seen as f64 / (1 << 20) as f64
}

/// Peak resident memory of `adstream demo --duration 60` with its compile cache in `cache`.
fn demo_peak(dir: &Path, cache: &Path) -> f64 {
    let child = Command::new(BIN)
        .args(["demo", "--duration", "60", "--status-addr", "off", "--out"])
        .arg(dir.join("demo-out"))
        .env("ADSTREAM_COMPILE_CACHE", cache)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    watch_peak(child, Duration::from_millis(50))
}

/// Peak resident memory, in MiB, of the compile child (`adstream compile-plugin`) compiling
/// the plugin `name`: what the host no longer holds. (Not the child's `ru_maxrss`: that
/// counts the memory of the process it was spawned from.)
fn compile_peak(dir: &Path, name: &str) -> f64 {
    let out = dir.join(format!("{name}.cwasm"));
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/dist/{name}.wasm"));
    let child = Command::new(BIN)
        .args([
            "--log",
            "off",
            "compile-plugin",
            "--memory",
            "1073741824",
            "--out",
        ])
        .arg(&out)
        .stdin(std::fs::File::open(wasm).unwrap())
        .spawn()
        .unwrap();
    watch_peak(child, Duration::from_millis(2))
}

pub fn demo_memory(dir: &Path, n: usize) -> Section {
    let mut runs = 0;
    let cold = repeat(n, || {
        runs += 1;
        demo_peak(dir, &dir.join(format!("mem-cold-{runs}")))
    });
    let warm = repeat(n, || demo_peak(dir, &dir.join("mem-cold-1")));
    let plugins = [
        "anomaly_ema",
        "pii_hash",
        "quality",
        "slack_format",
        "window_aggregate",
    ];
    let child = repeat(1, || {
        plugins
            .iter()
            .map(|p| compile_peak(dir, p))
            .fold(0.0, f64::max)
    });
    Section {
        title: "Resident memory",
        about: format!(
            "Peak resident memory of `adstream demo --duration 60` (the generator at 20,000 \
             events/s through the demo's six stages into files; the `unique` rule's state \
             is full after 20 s), sampled every 50 ms, with an empty compile cache (a first \
             run: the five plugins are compiled, each in a child process) and with the \
             cache that run filled; and the largest peak of a compile child (`adstream \
             compile-plugin`, one per plugin), which exits before the first event. MiB, \
             median (min–max) of {n} runs."
        ),
        header: vec!["process", "peak MiB"],
        rows: vec![
            vec!["adstream demo, empty compile cache".into(), cold.show(0)],
            vec!["adstream demo, filled compile cache".into(), warm.show(0)],
            vec![
                "compile child, largest of the five plugins".into(),
                child.show(0),
            ],
        ],
    }
}
