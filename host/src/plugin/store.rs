//! What each plugin's store holds: an empty WASI context, the memory budget, captured
//! stderr, and what the plugin handed the host through the `host` interface (log lines,
//! counters).
//!
//! Plugins get no ambient authority: WASI is linked only because Rust's `wasm32-wasip2`
//! standard library imports it, with a context that has no files, no environment, no
//! network, clocks frozen at zero whose waits end at once, and randomness seeded from the
//! stage's name (the same numbers on every replay, different numbers in each stage).

use super::bindings::host::{self, Level};
use super::error::TrapKind;
use super::limits::Limits;
use super::text;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bytes of a plugin's stderr (panic messages) kept for error reports.
const STDERR_CAPACITY: usize = 16 * 1024;

/// Bytes a table element costs (a pointer, in Wasmtime).
const TABLE_ELEMENT: usize = 8;

/// One budget for everything an instance allocates: every linear memory and table
/// together, and how many instances, tables and memories it may create.
pub struct Budget {
    limit: usize,
    used: usize,
    /// Which limit was hit, so that the trap it causes is reported by kind.
    pub hit: Option<TrapKind>,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: 0,
            hit: None,
        }
    }

    fn grow(&mut self, delta: usize) -> wasmtime::Result<bool> {
        let requested = self.used.saturating_add(delta);
        if requested > self.limit {
            self.hit = Some(TrapKind::Memory {
                limit: self.limit,
                requested,
            });
            wasmtime::bail!("memory budget exceeded");
        }
        self.used = requested;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for Budget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            desired
                .saturating_sub(current)
                .saturating_mul(TABLE_ELEMENT),
        )
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}

/// What a plugin handed the host through the `host` interface since it was last asked.
#[derive(Debug, Default)]
pub struct Reports {
    pub counters: BTreeMap<String, u64>,
    /// Log lines dropped for the rate limit, and counter additions dropped for a name
    /// beyond the limit (or one with nothing left after cleaning).
    pub logs_dropped: u64,
    pub counters_dropped: u64,
}

/// Log lines a plugin may write: `rate` per second, refilled continuously.
struct LogBudget {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl LogBudget {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let gained = now.duration_since(self.refilled).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + gained).min(self.rate.max(1.0));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a plugin's store holds.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub budget: Budget,
    /// The byte limit (and its key under `limits`) of what the current call may hand the
    /// host; Wasmtime's hostcall fuel enforces it while lifting.
    pub handover: (&'static str, usize),
    /// The stage the plugin runs in, for its log lines.
    pub stage: Arc<str>,
    /// Counters and budget overruns since the host last took them.
    pub reports: Reports,
    /// Distinct counter names ever used (the counter budget counts these).
    names: std::collections::BTreeSet<String>,
    max_names: usize,
    logs: LogBudget,
    message_bytes: usize,
    /// What the plugin wrote to stderr (Rust panics write their message there).
    pub stderr: MemoryOutputPipe,
    /// The input columns the plugin said it reads (`host.reads`), while `configure` runs:
    /// `Some(None)` until it says; `None` outside `configure`, where the call is ignored.
    pub reads: Option<Option<Vec<String>>>,
}

impl StoreState {
    /// A store for `stage` under `limits`; its randomness (both WASI sources) is seeded with
    /// `seed`, so that a replay gives the same numbers.
    pub fn new(stage: Arc<str>, limits: &Limits, seed: u64) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(u128::from(seed))
            .secure_random(stable_rng(seed))
            .insecure_random(stable_rng(!seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let rate = f64::from(limits.log_lines_per_second);
        StoreState {
            wasi,
            table: ResourceTable::new(),
            budget: Budget::new(limits.memory_bytes),
            handover: ("output_bytes", limits.output_bytes),
            stage,
            reports: Reports::default(),
            names: Default::default(),
            max_names: limits.counters,
            logs: LogBudget {
                rate,
                tokens: rate,
                refilled: Instant::now(),
            },
            message_bytes: limits.message_bytes,
            stderr,
            reads: None,
        }
    }

    /// What the plugin last said on stderr: the last panic message (Rust prints
    /// "panicked at FILE:LINE:COL:" then the message), or else the last line.
    pub fn last_stderr_line(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
            let at = &lines[i][lines[i].find("panicked at").unwrap_or(0)..];
            let message = lines.get(i + 1).copied().unwrap_or("");
            return Some(format!("{at} {message}").trim().to_string());
        }
        lines.last().map(|l| l.to_string())
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A generator whose output for a seed is fixed by its algorithm (PCG), not by a crate
/// version: a replay after an upgrade gives the plugin the same numbers. Both WASI sources
/// are set, since wasmtime seeds the insecure one from the OS unless told otherwise.
pub fn stable_rng(seed: u64) -> rand_pcg::Pcg64 {
    use rand_core::SeedableRng;
    rand_pcg::Pcg64::seed_from_u64(seed)
}

/// Plugins see time only through their arguments; a clock that reads zero keeps a plugin
/// that asks the system anyway deterministic.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl host::Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        if !self.logs.take() {
            self.reports.logs_dropped += 1;
            return;
        }
        let message = text::cut(message, self.message_bytes);
        let message = text::escape(&message);
        let stage = &*self.stage;
        match level {
            Level::Debug => tracing::debug!(stage, "{message}"),
            Level::Info => tracing::info!(stage, "{message}"),
            Level::Warn => tracing::warn!(stage, "{message}"),
            Level::Error => tracing::error!(stage, "{message}"),
        }
    }

    fn count(&mut self, name: String, delta: u64) {
        let known = self.names.contains(&name);
        let room = self.names.len() < self.max_names;
        match text::name(&name) {
            Some(clean) if known || room => {
                if !known {
                    self.names.insert(name);
                }
                let c = self.reports.counters.entry(clean).or_default();
                *c = c.saturating_add(delta);
            }
            _ => self.reports.counters_dropped += 1,
        }
    }

    fn reads(&mut self, columns: Vec<String>) {
        // The list is bounded by the call's hostcall fuel while it is lifted; the host
        // checks each name against the input once `configure` returns.
        if let Some(declared) = &mut self.reads {
            *declared = Some(columns);
        }
    }
}

/// A pollable that is ready at once: plugins have no time, so a sleep or a poll on a clock
/// returns immediately instead of blocking the host inside the call, where the deadline
/// could not reach it. A plugin that sleeps in a loop is then a loop, and the deadline
/// stops it.
struct Elapsed;

impl wasmtime_wasi::p2::Pollable for Elapsed {
    fn ready<'a, 'b>(&'a mut self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

/// Replaces the monotonic clock's two subscriptions (the only WASI calls that can block
/// with the context plugins get) with ones that never wait.
pub fn never_block(linker: &mut wasmtime::component::Linker<StoreState>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::{DynPollable, subscribe};
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    fn elapsed(table: &mut ResourceTable) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let at = table.push(Elapsed)?;
        Ok((subscribe(table, at)?,))
    }
    clock.func_wrap(
        "subscribe-duration",
        |mut s: wasmtime::StoreContextMut<'_, StoreState>, (_,): (u64,)| {
            elapsed(&mut s.data_mut().table)
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut s: wasmtime::StoreContextMut<'_, StoreState>, (_,): (u64,)| {
            elapsed(&mut s.data_mut().table)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one memory of 10 pages (640 KiB) per entry of `memories`.
    fn module(memories: u8) -> Vec<u8> {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.extend([5, 1 + 2 * memories, memories]);
        for _ in 0..memories {
            bytes.extend([0, 10]);
        }
        bytes
    }

    fn instantiate(memories: u8, budget: usize) -> (wasmtime::Result<()>, Option<TrapKind>) {
        let engine = wasmtime::Engine::default();
        let mut store = wasmtime::Store::new(&engine, Budget::new(budget));
        store.limiter(|b| b);
        let m = wasmtime::Module::new(&engine, module(memories)).unwrap();
        let made = wasmtime::Instance::new(&mut store, &m, &[]).map(|_| ());
        (made, store.data_mut().hit.take())
    }

    /// The numbers a plugin draws for a seed are pinned: a dependency upgrade that changed
    /// them would make a replay differ from the run it replays.
    #[test]
    fn a_seed_gives_the_same_numbers_in_every_version() {
        use rand_core::Rng;
        let draw = |seed| {
            let mut rng = stable_rng(seed);
            [rng.next_u64(), rng.next_u64()]
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let pinned = [4_178_418_447_715_145_737, 4_410_739_922_618_931_473];
        assert_eq!(draw(42), pinned, "PCG64's first numbers for seed 42");
    }

    #[test]
    fn one_budget_covers_every_memory_of_an_instance() {
        let (one, hit) = instantiate(1, 1 << 20);
        assert!(one.is_ok() && hit.is_none(), "{one:?}");
        // Each memory alone fits in 1 MiB, the two together do not.
        let (two, hit) = instantiate(2, 1 << 20);
        assert!(two.is_err());
        assert!(
            matches!(hit, Some(TrapKind::Memory { limit, requested }) if limit == 1 << 20 && requested == 1280 << 10),
            "{hit:?}"
        );
    }
}
