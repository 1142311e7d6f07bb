//! `validate`: the plugin names the rows that break a rule.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::types as w;
use crate::plugin::bindings::validate::{Validate, ValidatePre};
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::InstancePre;

pub(super) fn pre(pre: InstancePre<StoreState>) -> Wasm<ValidatePre<StoreState>> {
    ValidatePre::new(pre)
}

impl Pre for ValidatePre<StoreState> {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        Ok(Box::new(ValidatePre::instantiate(self, s)?))
    }
}

impl Calls for Validate {
    fn info(&self, s: &mut Store<StoreState>) -> Wasm<w::PluginInfo> {
        self.call_info(s)
    }

    fn configure(&self, s: &mut Store<StoreState>, setup: &w::Setup) -> Plugin<Vec<w::Field>> {
        self.call_configure(s, setup)
    }

    fn process(&self, s: &mut Store<StoreState>, input: &w::Batch, wm: i64) -> Plugin<WireOutput> {
        Ok(self
            .call_validate(s, input, wm)?
            .map(WireOutput::Rejections))
    }
}
