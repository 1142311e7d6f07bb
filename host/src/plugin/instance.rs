//! One sandboxed plugin instance: its store (memory budget, deadline, captured stderr,
//! seeded randomness) and its calls, each taking and returning whole batches, each result
//! checked against the contract and the stage's budgets before anything reads it.

use super::api::{Instance, Output, Plugin};
use super::bindings::types as w;
use super::check::{check_budget, check_output};
use super::convert::Convert;
use super::error::{CallError, Malformed, Trap, TrapKind};
use super::limits::Limits;
use super::loaded::LoadedPlugin;
use super::reads;
use super::role::{Calls, Role, WireOutput};
use super::runtime::TICK;
use super::store::{Reports, StoreState};
use super::text;
use adstream_sdk::{Batch, Field, PluginError, PluginInfo, Setup};
use std::path::Path;
use std::sync::Arc;
use wasmtime::Store;

/// A running plugin.
pub struct PluginInstance {
    store: Store<StoreState>,
    calls: Box<dyn Calls>,
    deadline_ticks: u64,
    fuel: Option<u64>,
    limits: Limits,
    output: Vec<Field>,
    info: PluginInfo,
    role: Role,
    /// The input columns the plugin declared it reads; `None`: every column.
    reads: Option<Vec<String>>,
}

/// What a trap was, by kind: a limit the store recorded, or the wasm trap code.
fn classify(
    store: &Store<StoreState>,
    limits: &Limits,
    fuel: Option<u64>,
    e: &wasmtime::Error,
) -> Trap {
    let kind = if let Some(hit) = &store.data().budget.hit {
        hit.clone()
    } else if handed_over_too_much(e) {
        let (key, limit) = store.data().handover;
        TrapKind::Handover { key, limit }
    } else {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => TrapKind::Deadline {
                ms: limits.deadline.as_millis(),
            },
            Some(wasmtime::Trap::OutOfFuel) => TrapKind::OutOfFuel {
                fuel: fuel.unwrap_or(0),
            },
            Some(wasmtime::Trap::MemoryOutOfBounds) => TrapKind::OutOfBounds,
            Some(trap) => TrapKind::Wasm(*trap),
            None => TrapKind::Runtime(text::cut(
                e.chain()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(": "),
                limits.message_bytes,
            )),
        }
    };
    let stderr = store.data().last_stderr_line();
    Trap {
        kind,
        stderr: stderr.map(|l| text::escape(&text::cut(l, limits.message_bytes)).into_owned()),
    }
}

/// Whether Wasmtime stopped lifting for the call's hostcall fuel. Its error type is
/// private, so it is known by its message (the budget tests fail if that changes).
fn handed_over_too_much(e: &wasmtime::Error) -> bool {
    e.chain()
        .any(|c| c.to_string().contains("fuel allocated for hostcalls"))
}

/// Bytes beyond a call's own limit that lifting may take: names, offsets, the records
/// around the values. The exact limits are checked on what was lifted.
const HANDOVER_SLACK: usize = 1 << 20;

impl Plugin for LoadedPlugin {
    fn role(&self) -> super::Role {
        self.compiled.role
    }

    fn stateful(&self) -> bool {
        self.compiled.stateful
    }

    fn mergeable(&self) -> bool {
        self.compiled.mergeable
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
        seed: u64,
    ) -> Result<Box<dyn Instance>, CallError> {
        Ok(Box::new(PluginInstance::new(self, stage, limits, seed)?))
    }
}

/// Who a plugin says it is, in words safe to show in labels and logs.
fn clean_info(info: PluginInfo) -> PluginInfo {
    let clean = |s: String, max: usize| text::escape(&text::cut(s, max)).into_owned();
    PluginInfo {
        name: text::name(&info.name).unwrap_or_else(|| "unnamed".into()),
        version: text::name(&info.version).unwrap_or_else(|| "unknown".into()),
        description: clean(info.description, 256),
    }
}

impl PluginInstance {
    /// Instantiates `plugin` for `stage` under `limits`, its randomness seeded with `seed`.
    pub fn new(
        plugin: &LoadedPlugin,
        stage: Arc<str>,
        limits: &Limits,
        seed: u64,
    ) -> Result<Self, CallError> {
        let compiled = &plugin.compiled;
        let mut store = Store::new(
            &compiled.runtime.engine,
            StoreState::new(stage, limits, seed),
        );
        let fuel = compiled
            .runtime
            .metered
            .then(|| limits.fuel.unwrap_or(u64::MAX));
        store.limiter(|s| &mut s.budget);
        store.epoch_deadline_trap();
        let deadline_ticks = (limits.deadline.as_micros() / TICK.as_micros()).max(1) as u64 + 1;
        store.set_epoch_deadline(deadline_ticks);
        if let Some(f) = fuel {
            store
                .set_fuel(f)
                .map_err(|e| CallError::Trap(classify(&store, limits, fuel, &e)))?;
        }
        let calls = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| CallError::Trap(classify(&store, limits, fuel, &e)))?;
        let mut inst = PluginInstance {
            store,
            calls,
            deadline_ticks,
            fuel,
            limits: limits.clone(),
            output: Vec::new(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
            },
            role: compiled.role,
            reads: None,
        };
        inst.info = clean_info(inst.call(|c, s| c.info(s))?.convert());
        Ok(inst)
    }

    /// Runs one export under the call deadline and the output byte limit, turning a trap
    /// into [`CallError::Trap`].
    fn call<T>(
        &mut self,
        f: impl FnOnce(&dyn Calls, &mut Store<StoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        self.call_within(("output_bytes", self.limits.output_bytes), f)
    }

    /// [`call`](Self::call) with another byte limit on what the call hands back.
    fn call_within<T>(
        &mut self,
        handover: (&'static str, usize),
        f: impl FnOnce(&dyn Calls, &mut Store<StoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        self.store.data_mut().handover = handover;
        self.store
            .set_hostcall_fuel(handover.1.saturating_add(HANDOVER_SLACK));
        self.store.set_epoch_deadline(self.deadline_ticks);
        let trap = |store: &Store<StoreState>, e: &wasmtime::Error, l: &Limits, fuel| {
            CallError::Trap(classify(store, l, fuel, e))
        };
        if let Some(fuel) = self.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| trap(&self.store, &e, &self.limits, self.fuel))?;
        }
        f(&*self.calls, &mut self.store).map_err(|e| trap(&self.store, &e, &self.limits, self.fuel))
    }

    /// Like [`call`](Self::call) for exports returning `result<T, plugin-error>`; the
    /// plugin's message is cut to the stage's `message_bytes`.
    fn try_call<T>(
        &mut self,
        f: impl FnOnce(
            &dyn Calls,
            &mut Store<StoreState>,
        ) -> wasmtime::Result<Result<T, w::PluginError>>,
    ) -> Result<T, CallError> {
        let max = self.limits.message_bytes;
        self.call(f)?
            .map_err(|e| CallError::Plugin(cut_error(e.convert(), max)))
    }

    fn checked(&self, b: Batch) -> Result<Batch, CallError> {
        check_output(&b, &self.output, self.limits.max_output_rows)
            .map_err(|m| CallError::trap(TrapKind::Malformed(m)))?;
        check_budget(&b, &self.limits).map_err(CallError::trap)?;
        Ok(b)
    }

    /// Rejects a malformed or over-budget result before anything downstream reads it.
    fn check(&self, out: WireOutput, rows: u32) -> Result<Output, CallError> {
        let bad = |m: Malformed| CallError::trap(TrapKind::Malformed(m));
        Ok(match out {
            WireOutput::Batch(b) => Output::Batch(self.checked(b.convert())?),
            WireOutput::Rejections(r) => {
                if let Some(x) = r.iter().find(|x| x.row >= rows) {
                    return Err(bad(Malformed::RejectedRow { row: x.row, rows }));
                }
                let max = self.limits.message_bytes;
                let mut r: Vec<adstream_sdk::Rejection> = r.convert();
                for x in &mut r {
                    x.rule = text::cut(std::mem::take(&mut x.rule), 128);
                    x.message = text::cut(std::mem::take(&mut x.message), max);
                }
                Output::Rejections(r)
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

/// A plugin error with its message cut to `max` bytes and its control characters escaped
/// (the message reaches the host's log).
fn cut_error(e: PluginError, max: usize) -> PluginError {
    let cut = |m| text::escape(&text::cut(m, max)).into_owned();
    match e {
        PluginError::InvalidConfig(m) => PluginError::InvalidConfig(cut(m)),
        PluginError::SchemaMismatch(m) => PluginError::SchemaMismatch(cut(m)),
        PluginError::InvalidInput(m) => PluginError::InvalidInput(cut(m)),
        PluginError::InvalidState(m) => PluginError::InvalidState(cut(m)),
        PluginError::Other(m) => PluginError::Other(cut(m)),
    }
}

impl Instance for PluginInstance {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn configure(&mut self, setup: Setup) -> Result<Vec<Field>, CallError> {
        let input = setup.input.clone();
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
        self.store.data_mut().reads = Some(None);
        let fields = self.try_call(|c, s| c.configure(s, &setup));
        let declared = self.store.data_mut().reads.take().flatten();
        let fields: Vec<w::Field> = fields?;
        self.reads = match declared {
            Some(names) => Some(
                reads::declared(self.role, &input, &names)
                    .map_err(|e| CallError::Plugin(cut_error(e, self.limits.message_bytes)))?,
            ),
            None => None,
        };
        self.output = fields.convert();
        Ok(self.output.clone())
    }

    fn process(&mut self, mut input: Batch, watermark: i64) -> (Batch, Result<Output, CallError>) {
        let aside = match &self.reads {
            Some(r) => reads::project(&mut input, r),
            None => Vec::new(),
        };
        let rows = input.rows;
        let wire: w::Batch = input.convert();
        let result = self
            .try_call(|c, s| c.process(s, &wire, watermark))
            .and_then(|out| self.check(out, rows));
        let mut back: Batch = wire.convert();
        reads::unproject(&mut back, aside);
        (back, result)
    }

    fn reads(&self) -> Option<&[String]> {
        self.reads.as_deref()
    }

    fn merge(&mut self, partials: Batch, watermark: i64) -> (Batch, Result<Output, CallError>) {
        // Partials are window rows, not the events the plugin declared it reads: they go
        // whole.
        let rows = partials.rows;
        let wire: w::Batch = partials.convert();
        let result = self
            .try_call(|c, s| c.merge(s, &wire, watermark))
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
        let limit = self.limits.snapshot_bytes;
        let max = self.limits.message_bytes;
        let state = self
            .call_within(("snapshot_bytes", limit), |c, s| c.snapshot(s))?
            .map_err(|e| CallError::Plugin(cut_error(e.convert(), max)))?;
        match state {
            Some(s) if s.len() > limit => Err(CallError::trap(TrapKind::Budget {
                what: "bytes of snapshot",
                key: "snapshot_bytes",
                got: s.len(),
                limit,
            })),
            other => Ok(other),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.try_call(|c, s| c.restore(s, state))
    }

    fn take_reports(&mut self) -> Reports {
        std::mem::take(&mut self.store.data_mut().reports)
    }
}
