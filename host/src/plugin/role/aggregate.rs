//! `aggregate`: events in, closed windows out; keeps its open windows as state. A
//! component of the `mergeable-aggregate` world (the same exports plus `merge`) also
//! merges other instances' partial windows; its extra export is looked up by name.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::aggregate::{Aggregate, AggregatePre};
use crate::plugin::bindings::types as w;
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::{Func, InstancePre};

type Merged = (Result<w::AggregateOutput, w::PluginError>,);

/// The aggregate world, and whether the component also merges.
pub(super) struct AggregateWorld {
    pre: AggregatePre<StoreState>,
    mergeable: bool,
}

pub(super) fn pre(pre: InstancePre<StoreState>, mergeable: bool) -> Wasm<AggregateWorld> {
    Ok(AggregateWorld {
        pre: AggregatePre::new(pre)?,
        mergeable,
    })
}

struct Instance {
    bindings: Aggregate,
    /// Typed at each call (merges are few: a handful of rows per window and partition),
    /// so that the partials are lowered from a borrow, as the generated calls do.
    merge: Option<Func>,
}

impl Pre for AggregateWorld {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        let instance = self.pre.instance_pre().instantiate(&mut *s)?;
        let bindings = Aggregate::new(&mut *s, &instance)?;
        let merge = match self.mergeable {
            true => Some(
                (instance.get_func(&mut *s, "merge"))
                    .ok_or_else(|| wasmtime::format_err!("no `merge` export"))?,
            ),
            false => None,
        };
        Ok(Box::new(Instance { bindings, merge }))
    }
}

fn windows(o: w::AggregateOutput) -> WireOutput {
    WireOutput::Windows {
        windows: o.windows,
        late: o.late,
    }
}

impl Calls for Instance {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.bindings.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.bindings.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, wm: i64) -> Plugin<WireOutput> {
        Ok(self.bindings.call_aggregate(s, input, wm)?.map(windows))
    }

    fn merge(&self, s: &mut Store<StoreState>, partials: &w::Batch, wm: i64) -> Plugin<WireOutput> {
        let Some(merge) = &self.merge else {
            let why = "this plugin does not merge partial windows".to_string();
            return Ok(Err(w::PluginError::Other(why)));
        };
        let typed = merge.typed::<(&w::Batch, i64), Merged>(&*s)?;
        let (out,) = typed.call(&mut *s, (partials, wm))?;
        Ok(out.map(windows))
    }

    fn flush(&self, s: &mut Store<StoreState>) -> Plugin<Option<w::Batch>> {
        Ok(self.bindings.call_flush(s)?.map(Some))
    }

    fn snapshot(&self, s: &mut Store<StoreState>) -> Plugin<Option<Vec<u8>>> {
        Ok(self.bindings.call_snapshot(s)?.map(Some))
    }

    fn restore(&self, s: &mut Store<StoreState>, state: &[u8]) -> Plugin<()> {
        self.bindings.call_restore(s, state)
    }
}
