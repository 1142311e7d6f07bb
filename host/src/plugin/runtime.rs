//! A wasmtime engine and the linker every plugin is instantiated against.
//!
//! Each call has a deadline enforced by epoch interruption: a ticker thread advances the
//! epoch every [`TICK`].

use super::bindings::host;
use super::store::StoreState;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, ProfilingStrategy};

/// How often the epoch advances; call deadlines are rounded up to it.
pub const TICK: Duration = Duration::from_millis(5);

/// `ADSTREAM_PROFILE=perfmap` names each plugin function's machine code in
/// `/tmp/perf-PID.map`, so that `perf report` shows a plugin's own functions.
const PROFILE_VAR: &str = "ADSTREAM_PROFILE";

/// An engine and the linker plugins are instantiated against.
#[derive(Clone)]
pub struct Runtime {
    pub engine: Engine,
    pub linker: Arc<Linker<StoreState>>,
    /// Whether calls are metered by fuel (slower; for deterministic limits).
    pub metered: bool,
}

impl Runtime {
    /// A runtime, fuel-metered or not.
    pub(super) fn new(metered: bool) -> wasmtime::Result<Self> {
        let engine = Engine::new(&config(metered))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::store::never_block(&mut linker)?;
        host::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)?;
        start_ticker(&engine);
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            metered,
        })
    }
}

/// The engine's settings; a compile child (`child.rs`) builds its engine from the same, so
/// that the code it compiles loads here.
pub(super) fn config(metered: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(metered);
    if std::env::var_os(PROFILE_VAR).is_some_and(|v| v == "perfmap") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    config
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
