//! adstream: a stream-processing host for ad and e-commerce events whose business logic
//! runs in sandboxed WebAssembly plugins.
//!
//! Data flows source → decode → stages → sinks (see `ARCHITECTURE.md`):
//! [`sources`] yield raw records, [`batch::decode`] turns them into columns,
//! [`pipeline`] runs the stages ([`plugin`] instances) and routes their output to
//! [`sinks`]; [`config`] reads the pipeline files that wire it together.

#![warn(clippy::too_many_lines)]

pub mod batch;
pub mod cli;
pub mod config;
pub mod connect;
pub mod pipeline;
pub mod plugin;
pub mod sinks;
pub mod sources;
pub mod supervisor;
