//! One sandboxed plugin instance: its store (memory cap, deadline, captured stderr) and
//! the role-specific calls, each taking and returning whole batches.

use super::bindings::{aggregate, detect, format, transform, types as w, validate};
use super::check::check_output;
use super::convert::Convert;
use super::engine::{StoreState, TICK};
use super::limits::Limits;
use super::loaded::{LoadedPlugin, Pre, Role};
use adstream_sdk::{Batch, Field, PluginError, PluginInfo, Rejection, Setup};
use std::sync::Arc;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

enum Bound {
    Transform(transform::Transform),
    Validate(validate::Validate),
    Aggregate(aggregate::Aggregate),
    Detect(detect::Detect),
    Format(format::Format),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The plugin returned an error on purpose.
    Plugin(PluginError),
    /// The plugin trapped, ran past its deadline or memory cap, or returned a malformed
    /// result; the instance must not be called again.
    Trap(String),
}

impl CallError {
    pub fn describe(&self) -> String {
        match self {
            CallError::Plugin(e) => e.describe(),
            CallError::Trap(m) => m.clone(),
        }
    }
}

/// What one call produced, by role.
#[derive(Debug)]
pub enum Output {
    /// transform, detect, format: the output rows.
    Batch(Batch),
    /// validate: the rejected rows.
    Rejections(Vec<Rejection>),
    /// aggregate: closed windows, and the input rows that were too late.
    Windows { windows: Batch, late: Vec<u32> },
}

/// A running plugin.
pub struct PluginInstance {
    store: Store<StoreState>,
    bound: Bound,
    deadline_ticks: u64,
    deadline_ms: u128,
    fuel: Option<u64>,
    max_output_rows: u64,
    output: Vec<Field>,
    pub info: PluginInfo,
    pub role: Role,
}

type Wasm<T> = wasmtime::Result<T>;

/// Describes a trap for a person: deadline and memory cap by name, and the plugin's own
/// last words (a Rust panic message) when it wrote any.
fn describe_trap(
    store: &Store<StoreState>,
    deadline_ms: u128,
    fuel: Option<u64>,
    e: &wasmtime::Error,
) -> String {
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("exceeded its deadline of {deadline_ms} ms"),
        Some(Trap::OutOfFuel) => format!("ran out of fuel ({} units per call)", fuel.unwrap_or(0)),
        // Rust guests keep their stack in linear memory: running off it (unbounded
        // recursion) shows up as an out-of-bounds access, not as the wasm stack overflowing.
        Some(Trap::MemoryOutOfBounds) => {
            "trapped: out of bounds memory access (unbounded recursion, or a memory bug in the plugin)".to_string()
        }
        Some(trap) => format!("trapped: {trap}"),
        None => {
            let text = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            if text.contains("forcing trap when growing memory") {
                format!("exceeded its memory limit ({text})")
            } else {
                format!("failed: {text}")
            }
        }
    };
    match store.data().last_stderr_line() {
        Some(line) => format!("{what}; plugin stderr: {line}"),
        None => what,
    }
}

impl PluginInstance {
    /// Instantiates `plugin` for `stage` under `limits`.
    pub fn new(plugin: &LoadedPlugin, stage: Arc<str>, limits: &Limits) -> Result<Self, CallError> {
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&plugin.runtime.engine, StoreState::new(stage, store_limits));
        let fuel = plugin
            .runtime
            .metered
            .then(|| limits.fuel.unwrap_or(u64::MAX));
        if let Some(f) = fuel {
            store
                .set_fuel(f)
                .map_err(|e| CallError::Trap(e.to_string()))?;
        }
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        let deadline_ticks = (limits.deadline.as_micros() / TICK.as_micros()).max(1) as u64 + 1;
        let deadline_ms = limits.deadline.as_millis();
        store.set_epoch_deadline(deadline_ticks);
        let bound = match &plugin.pre {
            Pre::Transform(p) => p.instantiate(&mut store).map(Bound::Transform),
            Pre::Validate(p) => p.instantiate(&mut store).map(Bound::Validate),
            Pre::Aggregate(p) => p.instantiate(&mut store).map(Bound::Aggregate),
            Pre::Detect(p) => p.instantiate(&mut store).map(Bound::Detect),
            Pre::Format(p) => p.instantiate(&mut store).map(Bound::Format),
        }
        .map_err(|e| CallError::Trap(describe_trap(&store, deadline_ms, fuel, &e)))?;
        let mut inst = PluginInstance {
            store,
            bound,
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
            role: plugin.role,
        };
        inst.info = inst
            .call(|b, s| match b {
                Bound::Transform(x) => x.call_info(s),
                Bound::Validate(x) => x.call_info(s),
                Bound::Aggregate(x) => x.call_info(s),
                Bound::Detect(x) => x.call_info(s),
                Bound::Format(x) => x.call_info(s),
            })?
            .convert();
        Ok(inst)
    }

    /// Runs one export under the call deadline, turning a trap into [`CallError::Trap`].
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Bound, &mut Store<StoreState>) -> Wasm<T>,
    ) -> Result<T, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(fuel) = self.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Trap(e.to_string()))?;
        }
        f(&self.bound, &mut self.store).map_err(|e| {
            CallError::Trap(describe_trap(&self.store, self.deadline_ms, self.fuel, &e))
        })
    }

    /// Like [`call`](Self::call) for exports returning `result<T, plugin-error>`.
    fn try_call<T>(
        &mut self,
        f: impl FnOnce(&Bound, &mut Store<StoreState>) -> Wasm<Result<T, w::PluginError>>,
    ) -> Result<T, CallError> {
        self.call(f)?.map_err(|e| CallError::Plugin(e.convert()))
    }

    /// Counters the plugin added to since the last call of this, emptied.
    pub fn take_counters(&mut self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut self.store.data_mut().counters)
    }

    /// Configures the plugin; returns its output columns.
    pub fn configure(&mut self, setup: Setup) -> Result<Vec<Field>, CallError> {
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
        let fields: Vec<w::Field> = self.try_call(|b, s| match b {
            Bound::Transform(x) => x.call_configure(s, &setup),
            Bound::Validate(x) => x.call_configure(s, &setup),
            Bound::Aggregate(x) => x.call_configure(s, &setup),
            Bound::Detect(x) => x.call_configure(s, &setup),
            Bound::Format(x) => x.call_configure(s, &setup),
        })?;
        self.output = fields.convert();
        Ok(self.output.clone())
    }

    /// Sends `input` through the plugin. The input comes back whatever happens, so that a
    /// failed batch can go to the dead letters.
    pub fn process(&mut self, input: Batch, watermark: i64) -> (Batch, Result<Output, CallError>) {
        let rows = input.rows;
        let wire: w::Batch = input.convert();
        let result = match self.role {
            Role::Transform => self
                .try_call(|b, s| match b {
                    Bound::Transform(x) => x.call_transform(s, &wire),
                    _ => unreachable!("bound to the transform world"),
                })
                .map(|out| Output::Batch(out.convert())),
            Role::Validate => self
                .try_call(|b, s| match b {
                    Bound::Validate(x) => x.call_validate(s, &wire, watermark),
                    _ => unreachable!("bound to the validate world"),
                })
                .map(|r| Output::Rejections(r.convert())),
            Role::Aggregate => self
                .try_call(|b, s| match b {
                    Bound::Aggregate(x) => x.call_aggregate(s, &wire, watermark),
                    _ => unreachable!("bound to the aggregate world"),
                })
                .map(|o| Output::Windows {
                    windows: o.windows.convert(),
                    late: o.late,
                }),
            Role::Detect => self
                .try_call(|b, s| match b {
                    Bound::Detect(x) => x.call_detect(s, &wire),
                    _ => unreachable!("bound to the detect world"),
                })
                .map(|out| Output::Batch(out.convert())),
            Role::Format => self
                .try_call(|b, s| match b {
                    Bound::Format(x) => x.call_format(s, &wire),
                    _ => unreachable!("bound to the format world"),
                })
                .map(|out| Output::Batch(out.convert())),
        };
        let result = result.and_then(|out| self.check(out, rows));
        (wire.convert(), result)
    }

    /// Rejects a malformed result before anything downstream reads it.
    fn check(&self, out: Output, input_rows: u32) -> Result<Output, CallError> {
        let bad = |m: String| CallError::Trap(format!("returned a malformed result: {m}"));
        match &out {
            Output::Batch(b) | Output::Windows { windows: b, .. } => {
                check_output(b, &self.output, self.max_output_rows).map_err(bad)?
            }
            Output::Rejections(r) => {
                if let Some(x) = r.iter().find(|x| x.row >= input_rows) {
                    return Err(bad(format!(
                        "rejected row {} of a {input_rows}-row batch",
                        x.row
                    )));
                }
            }
        }
        if let Output::Windows { late, .. } = &out
            && let Some(x) = late.iter().find(|&&x| x >= input_rows)
        {
            return Err(bad(format!(
                "named late row {x} of a {input_rows}-row batch"
            )));
        }
        Ok(out)
    }

    /// Closes every open window (aggregate only; other roles have nothing to flush).
    pub fn flush(&mut self) -> Result<Option<Batch>, CallError> {
        if self.role != Role::Aggregate {
            return Ok(None);
        }
        let out: w::Batch = self.try_call(|b, s| match b {
            Bound::Aggregate(x) => x.call_flush(s),
            _ => unreachable!("bound to the aggregate world"),
        })?;
        let out = self.check(Output::Batch(out.convert()), u32::MAX)?;
        match out {
            Output::Batch(b) => Ok(Some(b)),
            _ => unreachable!("checked a batch"),
        }
    }

    /// The plugin's state (stateful roles only).
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        let state = match self.role {
            Role::Aggregate | Role::Detect => self.try_call(|b, s| match b {
                Bound::Aggregate(x) => x.call_snapshot(s),
                Bound::Detect(x) => x.call_snapshot(s),
                _ => unreachable!("stateful worlds only"),
            })?,
            _ => return Ok(None),
        };
        Ok(Some(state))
    }

    /// Loads a state `snapshot` returned.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        match self.role {
            Role::Aggregate | Role::Detect => self.try_call(|b, s| match b {
                Bound::Aggregate(x) => x.call_restore(s, state),
                Bound::Detect(x) => x.call_restore(s, state),
                _ => unreachable!("stateful worlds only"),
            }),
            _ => Ok(()),
        }
    }
}
