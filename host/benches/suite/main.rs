//! The benchmark suite: decode, each plugin beside its native build, the boundary, the
//! seed's chains from a file, start-up and memory. `scripts/bench.sh` runs it and writes
//! BENCHMARKS.md.
//!
//!   cargo bench -p adstream --bench suite -- [--repeat N] [--events N] [--only a,b]
//!       [--case TEXT] [--services] [--write FILE]
//!
//! `--case TEXT` keeps only the plugins section's rows whose name holds TEXT (to profile
//! one plugin, e.g. under `valgrind --tool=callgrind`).
//!
//! Sections: decode, plugins, boundary, chains, shop, shards, startup, memory, and with `--services`
//! (the broker, ClickHouse and Redis running) e2e and latency. Every figure is a median
//! of N runs (default 5) with its range, from this one process, so ratios compare runs on
//! the same machine under the same load.

mod chains;
mod data;
mod decode;
mod e2e;
mod latency;
mod plugins;
mod process;
mod report;
mod shards;
mod shop;

use report::Section;

struct Args {
    repeat: usize,
    events: u64,
    only: Option<Vec<String>>,
    case: Option<String>,
    services: bool,
    write: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        repeat: 5,
        events: 600_000,
        only: None,
        case: None,
        services: false,
        write: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--repeat" => a.repeat = value().parse().expect("--repeat N"),
            "--events" => a.events = value().parse().expect("--events N"),
            "--only" => a.only = Some(value().split(',').map(String::from).collect()),
            "--case" => a.case = Some(value()),
            "--write" => a.write = Some(value()),
            "--services" => a.services = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The machine the figures come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: u64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{} GiB", kb >> 20))
        })
        .unwrap_or_default();
    format!("{cpu}, {cores} cores available, {mem} memory")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let wanted = |s: &str| a.only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    let dir = tempfile::tempdir().unwrap();
    eprintln!("generating {} events", a.events);
    let (events, raw) = data::events(dir.path(), a.events, 5000).await;
    let decoder = data::decoder(dir.path(), &events);
    let batches = data::decoded(&decoder, &raw);
    let engine = adstream::plugin::PluginEngine::with_cache_dir(None).unwrap();
    let n = a.repeat;
    let mut sections: Vec<Section> = Vec::new();
    let mut add = |s: Section| {
        println!("{}", s.markdown());
        sections.push(s);
    };
    if wanted("decode") {
        add(decode::run(&decoder, &raw, data::bytes(&raw), n));
    }
    if wanted("plugins") {
        add(plugins::run(
            &engine,
            &decoder.fields(),
            &batches,
            n,
            a.case.as_deref(),
        ));
    }
    if wanted("boundary") {
        add(plugins::boundary(&engine, &decoder.fields(), &batches, n));
    }
    if wanted("chains") {
        add(chains::run(&engine, dir.path(), &events, n).await);
    }
    if wanted("shop") {
        add(shop::run(&engine, dir.path(), a.events, n).await);
    }
    if wanted("shards") {
        add(shards::run(&engine, dir.path(), &events, &batches, n).await);
    }
    if wanted("startup") {
        add(process::startup(dir.path(), n));
    }
    if wanted("memory") {
        add(process::demo_memory(dir.path(), n.min(3)));
    }
    if a.services && wanted("e2e") {
        add(e2e::run(dir.path(), a.events.min(300_000), n.min(3)).await);
    }
    if a.services && wanted("latency") {
        add(latency::run(dir.path(), 20, n.min(3)).await);
    }
    if let Some(path) = a.write {
        let body: Vec<String> = sections.iter().map(Section::markdown).collect();
        let text = format!(
            "# Benchmarks\n\nWritten by `scripts/bench.sh` (the suite in \
             `host/benches/suite/`) on {}: {}.\nReproduce with `scripts/bench.sh`, or one \
             section with `cargo bench -p adstream --bench suite -- --only SECTION`.\n\
             This file is written whole by each run; what the figures mean, where the time \
             goes and what was tried are in [docs/performance.md](docs/performance.md).\n\n{}",
            chrono_free_date(),
            machine(),
            body.join("\n")
        );
        std::fs::write(&path, text).unwrap();
        eprintln!("wrote {path}");
    }
}

/// Today's date (UTC) without a date crate: from the system's `date`.
fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
