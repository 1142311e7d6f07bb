//! `format`: alert rows in, one message per row out.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::format::{Format, FormatPre};
use crate::plugin::bindings::types as w;
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) fn pre(pre: InstancePre<StoreState>) -> Wasm<FormatPre<StoreState>> {
    FormatPre::new(pre)
}

impl Pre for FormatPre<StoreState> {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        Ok(Box::new(FormatPre::instantiate(self, s)?))
    }
}

impl Calls for Format {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, _: i64) -> Plugin<WireOutput> {
        Ok(self.call_format(s, input)?.map(WireOutput::Batch))
    }
}
