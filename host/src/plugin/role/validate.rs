//! `validate`: the plugin names the rows that break a rule. A component of the
//! `stateful-validate` world (the same exports plus `snapshot` and `restore`) keeps state
//! between batches; its two extra exports are looked up by name.

use super::{Calls, Plugin, Pre, Wasm, WireOutput};
use crate::plugin::bindings::types as w;
use crate::plugin::bindings::validate::{Validate, ValidatePre};
use crate::plugin::store::StoreState;
use wasmtime::Store;
use wasmtime::component::{InstancePre, TypedFunc};

type Snapshot = TypedFunc<(), (Result<Vec<u8>, w::PluginError>,)>;
type Restore = TypedFunc<(Vec<u8>,), (Result<(), w::PluginError>,)>;

/// The validate world, and whether the component also keeps state.
pub(super) struct ValidateWorld {
    pre: ValidatePre<StoreState>,
    stateful: bool,
}

pub(super) fn pre(pre: InstancePre<StoreState>, stateful: bool) -> Wasm<ValidateWorld> {
    Ok(ValidateWorld {
        pre: ValidatePre::new(pre)?,
        stateful,
    })
}

struct Instance {
    bindings: Validate,
    state: Option<(Snapshot, Restore)>,
}

impl Pre for ValidateWorld {
    fn instantiate(&self, s: &mut Store<StoreState>) -> Wasm<Box<dyn Calls>> {
        let instance = self.pre.instance_pre().instantiate(&mut *s)?;
        let bindings = Validate::new(&mut *s, &instance)?;
        let state = match self.stateful {
            true => Some((
                instance.get_typed_func(&mut *s, "snapshot")?,
                instance.get_typed_func(&mut *s, "restore")?,
            )),
            false => None,
        };
        Ok(Box::new(Instance { bindings, state }))
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
        Ok(self
            .bindings
            .call_validate(s, input, wm)?
            .map(WireOutput::Rejections))
    }

    fn snapshot(&self, s: &mut Store<StoreState>) -> Plugin<Option<Vec<u8>>> {
        match &self.state {
            Some((snapshot, _)) => Ok(snapshot.call(s, ())?.0.map(Some)),
            None => Ok(Ok(None)),
        }
    }

    fn restore(&self, s: &mut Store<StoreState>, state: &[u8]) -> Plugin<()> {
        match &self.state {
            Some((_, restore)) => Ok(restore.call(s, (state.to_vec(),))?.0),
            None => Ok(Ok(())),
        }
    }
}
