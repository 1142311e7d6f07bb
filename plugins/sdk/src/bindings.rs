//! Bindings generated from `wit/adstream.wit`, one module per plugin role.
//!
//! The `types` and `host` interfaces are generated once (under `transform`) and shared by
//! the other worlds through `with`, so every role sees the same `Batch` type. The export
//! macros are public so that plugin crates can use them; the SDK's `export_*!` macros
//! wrap them.

#![allow(missing_docs, clippy::all)]

/// The `transform` world; it also owns the shared `types` and `host` interfaces.
pub mod transform {
    wit_bindgen::generate!({
        world: "transform",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_transform_world",
        default_bindings_module: "adstream_sdk::bindings::transform",
        runtime_path: "adstream_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq, Clone],
    });
}

/// The shared `host` interface.
pub use transform::adstream::plugin::host;
/// The shared `types` interface.
pub use transform::adstream::plugin::types;

macro_rules! world {
    ($module:ident, $world:literal, $macro_name:literal, $bindings:literal) => {
        #[doc = concat!("The `", $world, "` world.")]
        pub mod $module {
            wit_bindgen::generate!({
                world: $world,
                path: "../../wit",
                pub_export_macro: true,
                export_macro_name: $macro_name,
                default_bindings_module: $bindings,
                runtime_path: "adstream_sdk::__wit_bindgen::rt",
                with: {
                    "adstream:plugin/types@0.1.0": crate::bindings::types,
                    "adstream:plugin/host@0.1.0": crate::bindings::host,
                },
            });
        }
    };
}

world!(
    validate,
    "validate",
    "export_validate_world",
    "adstream_sdk::bindings::validate"
);
world!(
    stateful_validate,
    "stateful-validate",
    "export_stateful_validate_world",
    "adstream_sdk::bindings::stateful_validate"
);
world!(
    aggregate,
    "aggregate",
    "export_aggregate_world",
    "adstream_sdk::bindings::aggregate"
);
world!(
    mergeable_aggregate,
    "mergeable-aggregate",
    "export_mergeable_aggregate_world",
    "adstream_sdk::bindings::mergeable_aggregate"
);
world!(
    detect,
    "detect",
    "export_detect_world",
    "adstream_sdk::bindings::detect"
);
world!(
    format,
    "format",
    "export_format_world",
    "adstream_sdk::bindings::format"
);
