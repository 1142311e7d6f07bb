//! Guest SDK for adstream plugins.
//!
//! A plugin implements one role trait ([`Transform`], [`Validate`], [`Aggregate`],
//! [`Detect`] or [`Format`]; a validate with state also [`StatefulValidate`]) in plain
//! Rust and exports it with the matching macro ([`export_transform!`] and friends). This crate hides the columnar batch layout of the
//! WIT interface behind typed column readers ([`Batch::text`], [`Batch::i64s`], ...) and
//! output builders ([`BatchBuilder`]).
//!
//! Plugin crates also compile natively: their logic is then unit-tested as ordinary Rust,
//! and the host uses this crate's [`Batch`] as its own in-memory batch type, so there is
//! exactly one definition of the layout on each side of the boundary.

extern crate self as adstream_sdk;

pub mod bindings;
mod builder;
mod config;
#[doc(hidden)]
pub mod export;
mod hash;
pub mod log;
mod read;
pub mod reads;
mod roles;
mod schema;
mod select;
pub mod time;

pub use bindings::types::{
    AggregateOutput, Batch, Column, ColumnKind, Dict, Field, PluginError, PluginInfo, Rejection,
    Secret, Setup, Strings, Values,
};
pub use builder::{BoolBuilder, DictBuilder, F64Builder, I64Builder, TextBuilder};
pub use config::ConfigExt;
pub use hash::{FastMap, FixedHasher};
pub use log::{count, log_debug, log_error, log_info, log_warn};
pub use read::{BoolCol, F64Col, I64Col, StrCol};
pub use reads::reads;
pub use roles::{Aggregate, Detect, Format, MergeAggregate, StatefulValidate, Transform, Validate};
pub use schema::{FieldsExt, INT_KINDS, STRING_KINDS, field, kind_name, kind_of};

/// Re-exported so the export macros can name it from a plugin crate.
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use export::__export;
