//! Host bindings for the five plugin worlds, generated from `wit/adstream.wit`. The shared
//! `types` and `host` interfaces are generated once (under `transform`) and reused.

#![allow(clippy::all, missing_docs)]

pub mod transform {
    wasmtime::component::bindgen!({ world: "transform", path: "../wit" });
}

pub use transform::adstream::plugin::{host, types};

macro_rules! world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../wit",
                with: {
                    "adstream:plugin/types": crate::plugin::bindings::types,
                    "adstream:plugin/host": crate::plugin::bindings::host,
                },
            });
        }
    };
}

world!(validate, "validate");
world!(aggregate, "aggregate");
world!(detect, "detect");
world!(format, "format");
