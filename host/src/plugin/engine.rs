//! The wasmtime engine, the linker every plugin is instantiated against, and the state
//! each plugin's store carries.
//!
//! Plugins get no ambient authority: WASI is linked only because Rust's `wasm32-wasip2`
//! standard library imports it, with a context that has no files, no environment, no
//! network, a clock frozen at zero and a fixed random seed. Each store has a memory cap,
//! and each call a deadline enforced by epoch interruption (a ticker thread advances the
//! epoch every [`TICK`]).

use super::bindings::host::{self, Level};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances; call deadlines are rounded up to it.
pub const TICK: Duration = Duration::from_millis(5);

/// Bytes of a plugin's stderr (panic messages) kept for error reports.
const STDERR_CAPACITY: usize = 16 * 1024;

/// What a plugin's store holds.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    /// The stage the plugin runs in, for its log lines.
    pub stage: Arc<str>,
    /// Counters the plugin added to with `host.count`.
    pub counters: BTreeMap<String, u64>,
    /// What the plugin wrote to stderr (Rust panics write their message there).
    pub stderr: MemoryOutputPipe,
}

impl StoreState {
    pub fn new(stage: Arc<str>, limits: StoreLimits) -> Self {
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
            limits,
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

/// An engine and the linker plugins are instantiated against.
#[derive(Clone)]
pub struct Runtime {
    pub engine: Engine,
    pub linker: Arc<Linker<StoreState>>,
    /// Whether calls are metered by fuel (slower; for deterministic limits).
    pub metered: bool,
}

impl Runtime {
    fn new(metered: bool) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(metered);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        host::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)?;
        start_ticker(&engine);
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            metered,
        })
    }
}

/// The runtimes shared by every plugin of the process: fuel metering costs every call, so
/// only stages that ask for a fuel limit run on the metered one.
#[derive(Clone)]
pub struct PluginEngine {
    pub plain: Runtime,
    pub metered: Runtime,
}

impl PluginEngine {
    pub fn new() -> wasmtime::Result<Self> {
        Ok(PluginEngine {
            plain: Runtime::new(false)?,
            metered: Runtime::new(true)?,
        })
    }
}

/// Advances the engine's epoch every [`TICK`] for as long as the engine lives.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("adstream-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the epoch thread");
}
