//! Why a plugin call failed. A plugin's own error (a `plugin-error` it returned on purpose)
//! and a trap are different things and stay different: after a trap the instance must not
//! be called again, after an error it may.

use adstream_sdk::PluginError;
use std::fmt;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error on purpose.
    #[error("{}", .0.describe())]
    Plugin(PluginError),
    /// The plugin trapped, ran past a limit, or broke the interface's contract.
    #[error(transparent)]
    Trap(#[from] Trap),
}

impl CallError {
    /// The message for logs, status and dead letters.
    pub fn describe(&self) -> String {
        self.to_string()
    }

    pub fn trap(kind: TrapKind) -> Self {
        CallError::Trap(Trap { kind, stderr: None })
    }
}

/// A trap, with what the plugin last wrote to stderr (a Rust panic's message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Trap {
    pub kind: TrapKind,
    pub stderr: Option<String>,
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(line) = &self.stderr {
            write!(f, "; plugin stderr: {line}")?;
        }
        Ok(())
    }
}

/// What kind of trap.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrapKind {
    #[error("exceeded its deadline of {ms} ms")]
    Deadline { ms: u128 },
    #[error("ran out of fuel ({fuel} units per call)")]
    OutOfFuel { fuel: u64 },
    #[error("exceeded its memory limit of {limit} bytes (asked for {requested} in all)")]
    Memory { limit: usize, requested: usize },
    #[error("exceeded its limit of {limit} {what}")]
    Resources { what: &'static str, limit: usize },
    /// Rust guests keep their stack in linear memory: running off it (unbounded
    /// recursion) shows up as an out-of-bounds access, not as the wasm stack overflowing.
    #[error(
        "trapped: out of bounds memory access (unbounded recursion, or a memory bug in the plugin)"
    )]
    OutOfBounds,
    #[error("trapped: {0}")]
    Wasm(wasmtime::Trap),
    #[error("returned a malformed result: {0}")]
    Malformed(#[from] Malformed),
    #[error(
        "went over its budget: {what} {got}, more than the stage's limit of {limit} (limits.{key})"
    )]
    Budget {
        what: &'static str,
        key: &'static str,
        got: usize,
        limit: usize,
    },
    /// Wasmtime stopped lifting a result (or a host call's arguments) at the byte limit the
    /// call was given, before the host held more than that.
    #[error(
        "went over its budget: handed the host more than the stage's limit of {limit} bytes in one call (limits.{key})"
    )]
    Handover { key: &'static str, limit: usize },
    /// An error from the runtime that is not a trap (e.g. instantiation failed).
    #[error("failed: {0}")]
    Runtime(String),
}

/// How a result breaks the contract of the interface.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Malformed {
    #[error("returned {rows} rows, more than the stage's limit of {limit}")]
    TooManyRows { rows: usize, limit: u64 },
    #[error("returned columns {got:?}, but configure declared {declared:?}")]
    Columns {
        got: Vec<String>,
        declared: Vec<String>,
    },
    #[error("column `{column}` is {got}, but configure declared {declared}")]
    Kind {
        column: String,
        got: &'static str,
        declared: &'static str,
    },
    #[error("column `{column}` has {offsets} offsets for {rows} strings")]
    OffsetCount {
        column: String,
        offsets: usize,
        rows: usize,
    },
    #[error("column `{column}` has offsets out of order or past its bytes")]
    Offsets { column: String },
    #[error("column `{column}` has keys missing or outside its dictionary")]
    Keys { column: String },
    #[error("column `{column}` has {len} values for {rows} rows")]
    Length {
        column: String,
        len: usize,
        rows: usize,
    },
    #[error("column `{column}` has a validity bitmap too short for {rows} rows")]
    Bitmap { column: String, rows: usize },
    #[error("column `{column}` has nulls, but configure declared it not nullable")]
    Nulls { column: String },
    #[error("rejected row {row} of a {rows}-row batch")]
    RejectedRow { row: u32, rows: u32 },
    #[error("named late row {row} of a {rows}-row batch")]
    LateRow { row: u32, rows: u32 },
    #[error("column `{column}` row {row} is not UTF-8 text")]
    NotUtf8 { column: String, row: usize },
}
