//! `detect`: window rows in, alert rows out; keeps its baselines as state.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::detect::{Detect, DetectPre};
use crate::plugin::bindings::types as w;
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) fn pre(pre: InstancePre<StoreState>) -> Wasm<DetectPre<StoreState>> {
    DetectPre::new(pre)
}

impl Pre for DetectPre<StoreState> {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        Ok(Box::new(DetectPre::instantiate(self, s)?))
    }
}

impl Calls for Detect {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, _: i64) -> Plugin<WireOutput> {
        Ok(self.call_detect(s, input)?.map(WireOutput::Batch))
    }

    fn snapshot(&self, s: &mut Store<StoreState>) -> Plugin<Option<Vec<u8>>> {
        Ok(self.call_snapshot(s)?.map(Some))
    }

    fn restore(&self, s: &mut Store<StoreState>, state: &[u8]) -> Plugin<()> {
        self.call_restore(s, state)
    }
}
