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

pub fn demo_memory(dir: &Path, n: usize) -> Section {
    let rss = repeat(n, || {
        let mut child = Command::new(BIN)
            .args(["demo", "--duration", "60", "--out"])
            .arg(dir.join("demo-out"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = 0;
        while child.try_wait().unwrap().is_none() {
            seen = peak(child.id()).unwrap_or(seen).max(seen);
            std::thread::sleep(Duration::from_millis(50));
        }
        seen as f64 / (1 << 20) as f64
    });
    Section {
        title: "Resident memory",
        about: format!(
            "Peak resident memory of `adstream demo --duration 60` (the generator at 20,000 \
             events/s through the demo's six stages into files; the `unique` rule's state \
             is full after 20 s), sampled every 50 ms. MiB, median (min–max) of {n} runs."
        ),
        header: vec!["process", "peak MiB"],
        rows: vec![vec!["adstream demo".into(), rss.show(0)]],
    }
}
