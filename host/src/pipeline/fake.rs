//! A scripted stand-in for a WebAssembly plugin, for fast unit tests of the runtime
//! (bisection, restarts, quarantine, swaps, probation) with no `.wasm` built.
//!
//! The fake passes its input through and keeps one number of state: how many rows it has
//! taken in. It traps on a row whose `id` is `poison`, or on every call when `broken`; on
//! a row whose `id` is `error` it counts the batch and then returns an error (a plugin that
//! changed its state before failing). A test can so check that every row that succeeded
//! is counted exactly once.

use super::stage::{Input, Stage, StageSpec};
use crate::config::OnError;
use crate::plugin::{CallError, Instance, Limits, Output, Plugin, Reports, Role, TrapKind};
use adstream_sdk::{Batch, Field, PluginInfo, Setup, TextBuilder};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct FakePlugin {
    pub version: &'static str,
    /// Every call traps.
    pub broken: bool,
    /// This version also traps on a row with this id (one that fails where others do not).
    pub traps_on: Option<&'static str>,
    /// Its output writes this id in place of that one (a version that changed its rule).
    pub rename: Option<(&'static str, &'static str)>,
    /// Calls made to any of its instances, and the state each instance last had.
    pub calls: AtomicU64,
    pub counts: Mutex<Vec<u64>>,
    /// The columns it declares it reads (`Instance::reads`), and the columns of every
    /// batch it was handed.
    pub reads: Option<Vec<String>>,
    pub seen: Mutex<Vec<Vec<String>>>,
    /// The thread each call ran on.
    pub threads: Mutex<Vec<std::thread::ThreadId>>,
    /// Each call waits this long first (wall time without CPU).
    pub sleep: Option<std::time::Duration>,
}

struct FakeInstance {
    plugin: Arc<FakePlugin>,
    info: PluginInfo,
    rows: u64,
}

impl FakePlugin {
    pub fn new(version: &'static str) -> Arc<FakePlugin> {
        Arc::new(FakePlugin {
            version,
            ..Default::default()
        })
    }

    pub fn broken(version: &'static str) -> Arc<FakePlugin> {
        Arc::new(FakePlugin {
            version,
            broken: true,
            ..Default::default()
        })
    }

    /// The state of the instance that ran last.
    pub fn count(&self) -> u64 {
        self.counts.lock().unwrap().last().copied().unwrap_or(0)
    }
}

/// A wrapper so that `Arc<FakePlugin>` can stand where the pipeline wants a plugin.
pub struct Fake(pub Arc<FakePlugin>);

impl Plugin for Fake {
    fn role(&self) -> Role {
        Role::Transform
    }
    fn stateful(&self) -> bool {
        true
    }
    fn path(&self) -> &Path {
        Path::new("fake.wasm")
    }
    fn hash(&self) -> &str {
        self.0.version
    }
    fn metered(&self) -> bool {
        false
    }
    fn instantiate(&self, _: Arc<str>, _: &Limits, _: u64) -> Result<Box<dyn Instance>, CallError> {
        Ok(Box::new(FakeInstance {
            plugin: self.0.clone(),
            info: PluginInfo {
                name: "fake".into(),
                version: self.0.version.into(),
                description: String::new(),
            },
            rows: 0,
        }))
    }
}

impl Instance for FakeInstance {
    fn info(&self) -> &PluginInfo {
        &self.info
    }
    fn configure(&mut self, setup: Setup) -> Result<Vec<Field>, CallError> {
        Ok(setup.input)
    }
    fn process(&mut self, input: Batch, _: i64) -> (Batch, Result<Output, CallError>) {
        self.plugin.calls.fetch_add(1, Ordering::Relaxed);
        let names = input.columns.iter().map(|c| c.name.clone()).collect();
        self.plugin.seen.lock().unwrap().push(names);
        (self.plugin.threads.lock().unwrap()).push(std::thread::current().id());
        if let Some(wait) = self.plugin.sleep {
            std::thread::sleep(wait);
        }
        let ids = input.text("id").expect("fake input has ids");
        let traps = |id: Option<&str>| {
            id == Some("poison") || id.is_some_and(|id| self.plugin.traps_on == Some(id))
        };
        let poisoned = (0..input.len()).any(|r| traps(ids.get(r)));
        if self.plugin.broken || poisoned {
            let trap = CallError::trap(TrapKind::Runtime("scripted trap".into()));
            return (input, Err(trap));
        }
        self.rows += input.len() as u64;
        if (0..input.len()).any(|r| ids.get(r) == Some("error")) {
            let e = adstream_sdk::PluginError::InvalidInput("scripted error".into());
            return (input, Err(CallError::Plugin(e)));
        }
        self.plugin.counts.lock().unwrap().push(self.rows);
        let out = match self.plugin.rename {
            Some((from, to)) => {
                let mut b = TextBuilder::default();
                (0..input.len())
                    .for_each(|r| b.push(ids.get(r).filter(|&id| id != from).unwrap_or(to)));
                Batch::from_columns(vec![b.finish("id")]).expect("one column")
            }
            None => input.clone(),
        };
        (input, Ok(Output::Batch(out)))
    }
    fn reads(&self) -> Option<&[String]> {
        self.plugin.reads.as_deref()
    }
    fn flush(&mut self) -> Result<Option<Batch>, CallError> {
        Ok(None)
    }
    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        Ok(Some(self.rows.to_le_bytes().to_vec()))
    }
    fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.rows = u64::from_le_bytes(state.try_into().expect("8 bytes"));
        self.plugin.counts.lock().unwrap().push(self.rows);
        Ok(())
    }
    fn take_reports(&mut self) -> Reports {
        Reports::default()
    }
}

/// A stage running `plugin` on rows with one text column `id`.
pub fn stage(plugin: &Arc<FakePlugin>, max_failures: u32) -> Stage {
    Stage::start(spec(plugin, max_failures)).expect("a fake starts")
}

pub fn spec(plugin: &Arc<FakePlugin>, max_failures: u32) -> StageSpec {
    StageSpec {
        name: Arc::from("fake"),
        plugin: Arc::new(Fake(plugin.clone())),
        setup: Setup {
            config: "{}".into(),
            input: vec![adstream_sdk::field(
                "id",
                adstream_sdk::ColumnKind::Text,
                false,
            )],
            secrets: Vec::new(),
        },
        limits: Limits::default(),
        on_error: OnError::DeadLetter,
        max_failures: max_failures.try_into().expect("not zero"),
        batch_size: usize::MAX,
        input: Input::Source,
        to: Vec::new(),
        seed: 0,
        shards: 1,
        shard_by: Arc::from([]),
        partition_local: false,
        partitioned: false,
        canary: None,
    }
}

/// A started stage of `shards` fake instances reading `input`, keyed by `by`.
pub fn sharded(input: Input, shards: usize, by: &[&str]) -> Stage {
    let by: Vec<String> = by.iter().map(|c| c.to_string()).collect();
    let spec = StageSpec {
        input,
        shards,
        shard_by: Arc::from(by),
        partition_local: false,
        partitioned: false,
        ..spec(&FakePlugin::new("1"), 5)
    };
    Stage::start(spec).expect("a fake starts")
}

/// A batch of rows with these ids.
pub fn rows(ids: &[&str]) -> crate::batch::Envelope {
    let mut b = TextBuilder::default();
    ids.iter().for_each(|id| b.push(id));
    crate::batch::Envelope {
        batch: Batch::from_columns(vec![b.finish("id")]).expect("one column"),
        positions: None,
    }
}
