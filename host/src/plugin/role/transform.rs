//! `transform`: a batch in, a batch out.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::transform::{Transform, TransformPre};
use crate::plugin::bindings::types as w;
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) fn pre(pre: InstancePre<StoreState>) -> Wasm<TransformPre<StoreState>> {
    TransformPre::new(pre)
}

impl Pre for TransformPre<StoreState> {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        Ok(Box::new(TransformPre::instantiate(self, s)?))
    }
}

impl Calls for Transform {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, _: i64) -> Plugin<WireOutput> {
        Ok(self.call_transform(s, input)?.map(WireOutput::Batch))
    }
}
