//! `aggregate`: events in, closed windows out; keeps its open windows as state.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::aggregate::{Aggregate, AggregatePre};
use crate::plugin::bindings::types as w;
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) fn pre(pre: InstancePre<StoreState>) -> Wasm<AggregatePre<StoreState>> {
    AggregatePre::new(pre)
}

impl Pre for AggregatePre<StoreState> {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        Ok(Box::new(AggregatePre::instantiate(self, s)?))
    }
}

impl Calls for Aggregate {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, wm: i64) -> Plugin<WireOutput> {
        Ok(self
            .call_aggregate(s, input, wm)?
            .map(|o| WireOutput::Windows {
                windows: o.windows,
                late: o.late,
            }))
    }

    fn flush(&self, s: &mut Store<StoreState>) -> Plugin<Option<w::Batch>> {
        Ok(self.call_flush(s)?.map(Some))
    }

    fn snapshot(&self, s: &mut Store<StoreState>) -> Plugin<Option<Vec<u8>>> {
        Ok(self.call_snapshot(s)?.map(Some))
    }

    fn restore(&self, s: &mut Store<StoreState>, state: &[u8]) -> Plugin<()> {
        self.call_restore(s, state)
    }
}
