//! One sandboxed plugin instance: its store (memory budget, deadline, captured stderr)
//! and its calls, each taking and returning whole batches, each result checked.

use super::api::{Instance, Output, Plugin};
use super::bindings::types as w;
use super::check::check_output;
use super::convert::Convert;
use super::error::{CallError, Malformed, Trap, TrapKind};
use super::limits::Limits;
use super::loaded::LoadedPlugin;
use super::role::{Calls, WireOutput};
use super::runtime::TICK;
use super::store::StoreState;
use adstream_sdk::{Batch, Field, PluginInfo, Setup};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::Store;

/// A running plugin.
pub struct PluginInstance {
    store: Store<StoreState>,
    calls: Box<dyn Calls>,
    deadline_ticks: u64,
    deadline_ms: u128,
    fuel: Option<u64>,
    max_output_rows: u64,
    output: Vec<Field>,
    info: PluginInfo,
}

/// What a trap was, by kind: a limit the store recorded, or the wasm trap code.
fn classify(
    store: &Store<StoreState>,
    deadline_ms: u128,
    fuel: Option<u64>,
    e: &wasmtime::Error,
) -> Trap {
    let kind = if let Some(hit) = &store.data().budget.hit {
        hit.clone()
    } else {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => TrapKind::Deadline { ms: deadline_ms },
            Some(wasmtime::Trap::OutOfFuel) => TrapKind::OutOfFuel {
                fuel: fuel.unwrap_or(0),
            },
            Some(wasmtime::Trap::MemoryOutOfBounds) => TrapKind::OutOfBounds,
            Some(trap) => TrapKind::Wasm(*trap),
            None => TrapKind::Runtime(
                e.chain()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        }
    };
    Trap {
        kind,
        stderr: store.data().last_stderr_line(),
    }
}

impl Plugin for LoadedPlugin {
    fn role(&self) -> super::Role {
        self.compiled.role
    }

    fn stateful(&self) -> bool {
        self.compiled.stateful
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn hash(&self) -> &str {
        &self.compiled.hash
    }

    fn metered(&self) -> bool {
        self.compiled.runtime.metered
    }

    fn instantiate(
        &self,
        stage: Arc<str>,
        limits: &Limits,
    ) -> Result<Box<dyn Instance>, CallError> {
        Ok(Box::new(PluginInstance::new(self, stage, limits)?))
    }
}

impl PluginInstance {
    /// Instantiates `plugin` for `stage` under `limits`.
    pub fn new(plugin: &LoadedPlugin, stage: Arc<str>, limits: &Limits) -> Result<Self, CallError> {
        let compiled = &plugin.compiled;
        let mut store = Store::new(
            &compiled.runtime.engine,
            StoreState::new(stage, limits.memory_bytes),
        );
        let fuel = compiled
            .runtime
            .metered
            .then(|| limits.fuel.unwrap_or(u64::MAX));
        store.limiter(|s| &mut s.budget);
        store.epoch_deadline_trap();
        let deadline_ticks = (limits.deadline.as_micros() / TICK.as_micros()).max(1) as u64 + 1;
        let deadline_ms = limits.deadline.as_millis();
        store.set_epoch_deadline(deadline_ticks);
        if let Some(f) = fuel {
            store
                .set_fuel(f)
                .map_err(|e| CallError::Trap(classify(&store, deadline_ms, fuel, &e)))?;
        }
        let calls = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| CallError::Trap(classify(&store, deadline_ms, fuel, &e)))?;
        let mut inst = PluginInstance {
            store,
            calls,
            deadline_ticks,
            deadline_ms,
            fuel,
            max_output_rows: limits.max_output_rows,
            output: Vec::new(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
            },
        };
        inst.info = inst.call(|c, s| c.info(s))?.convert();
        Ok(inst)
    }

    /// Runs one export under the call deadline, turning a trap into [`CallError::Trap`].
    fn call<T>(
        &mut self,
        f: impl FnOnce(&dyn Calls, &mut Store<StoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(fuel) = self.fuel {
            self.store.set_fuel(fuel).map_err(|e| {
                CallError::Trap(classify(&self.store, self.deadline_ms, self.fuel, &e))
            })?;
        }
        f(&*self.calls, &mut self.store)
            .map_err(|e| CallError::Trap(classify(&self.store, self.deadline_ms, self.fuel, &e)))
    }

    /// Like [`call`](Self::call) for exports returning `result<T, plugin-error>`.
    fn try_call<T>(
        &mut self,
        f: impl FnOnce(
            &dyn Calls,
            &mut Store<StoreState>,
        ) -> wasmtime::Result<Result<T, w::PluginError>>,
    ) -> Result<T, CallError> {
        self.call(f)?.map_err(|e| CallError::Plugin(e.convert()))
    }

    fn checked(&self, b: Batch) -> Result<Batch, CallError> {
        check_output(&b, &self.output, self.max_output_rows)
            .map_err(|m| CallError::trap(TrapKind::Malformed(m)))?;
        Ok(b)
    }

    /// Rejects a malformed result before anything downstream reads it.
    fn check(&self, out: WireOutput, rows: u32) -> Result<Output, CallError> {
        let bad = |m: Malformed| CallError::trap(TrapKind::Malformed(m));
        Ok(match out {
            WireOutput::Batch(b) => Output::Batch(self.checked(b.convert())?),
            WireOutput::Rejections(r) => {
                if let Some(x) = r.iter().find(|x| x.row >= rows) {
                    return Err(bad(Malformed::RejectedRow { row: x.row, rows }));
                }
                Output::Rejections(r.convert())
            }
            WireOutput::Windows { windows, late } => {
                if let Some(&x) = late.iter().find(|&&x| x >= rows) {
                    return Err(bad(Malformed::LateRow { row: x, rows }));
                }
                let windows = self.checked(windows.convert())?;
                Output::Windows { windows, late }
            }
        })
    }
}

impl Instance for PluginInstance {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn configure(&mut self, setup: Setup) -> Result<Vec<Field>, CallError> {
        let setup = w::Setup {
            config: setup.config,
            input: setup.input.convert(),
            secrets: setup
                .secrets
                .into_iter()
                .map(|s| w::Secret {
                    name: s.name,
                    value: s.value,
                })
                .collect(),
        };
        let fields: Vec<w::Field> = self.try_call(|c, s| c.configure(s, &setup))?;
        self.output = fields.convert();
        Ok(self.output.clone())
    }

    fn process(&mut self, input: Batch, watermark: i64) -> (Batch, Result<Output, CallError>) {
        let rows = input.rows;
        let wire: w::Batch = input.convert();
        let result = self
            .try_call(|c, s| c.process(s, &wire, watermark))
            .and_then(|out| self.check(out, rows));
        (wire.convert(), result)
    }

    fn flush(&mut self) -> Result<Option<Batch>, CallError> {
        match self.try_call(|c, s| c.flush(s))? {
            Some(b) => Ok(Some(self.checked(b.convert())?)),
            None => Ok(None),
        }
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        self.try_call(|c, s| c.snapshot(s))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.try_call(|c, s| c.restore(s, state))
    }

    fn take_counters(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.store.data_mut().counters)
    }
}
