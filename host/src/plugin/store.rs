//! What each plugin's store holds: an empty WASI context, the memory budget, captured
//! stderr, and what the plugin handed the host through the `host` interface (log lines,
//! counters).
//!
//! Plugins get no ambient authority: WASI is linked only because Rust's `wasm32-wasip2`
//! standard library imports it, with a context that has no files, no environment, no
//! network, a clock frozen at zero and a fixed random seed.

use super::bindings::host::{self, Level};
use super::error::TrapKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
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

/// What a plugin's store holds.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub budget: Budget,
    /// The stage the plugin runs in, for its log lines.
    pub stage: Arc<str>,
    /// Counters the plugin added to with `host.count`.
    pub counters: BTreeMap<String, u64>,
    /// What the plugin wrote to stderr (Rust panics write their message there).
    pub stderr: MemoryOutputPipe,
}

impl StoreState {
    pub fn new(stage: Arc<str>, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        StoreState {
            wasi,
            table: ResourceTable::new(),
            budget: Budget::new(memory_bytes),
            stage,
            counters: BTreeMap::new(),
            stderr,
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
        let stage = &*self.stage;
        match level {
            Level::Debug => tracing::debug!(stage, "{message}"),
            Level::Info => tracing::info!(stage, "{message}"),
            Level::Warn => tracing::warn!(stage, "{message}"),
            Level::Error => tracing::error!(stage, "{message}"),
        }
    }

    fn count(&mut self, name: String, delta: u64) {
        *self.counters.entry(name).or_default() += delta;
    }
}
