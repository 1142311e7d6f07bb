//! Checkpoints: one consistent cut of a pipeline — the source positions, the watermark,
//! every stateful stage's state and each rewindable sink's mark — taken at a batch boundary
//! and written only once every sink has made everything before it durable. `cut.rs` is the
//! processor's half (snapshots, positions, a barrier to every sink), `writer.rs` the task
//! that waits for the sinks' answers and writes, `file.rs` the file (postcard with a
//! checksum, written aside and renamed, the previous one kept), `store.rs` the store of cuts
//! per partition that hosts sharing a pipeline use (in a folder, `folder.rs`, or an object
//! store, `objects.rs`).

mod cut;
mod file;
mod folder;
mod lock;
mod objects;
mod store;
mod unit;
mod writer;

pub use file::{Checkpoint, CheckpointError, load, path};
pub use lock::{Lock, lock};
pub use store::{Claim, Location, Store, StoreError, Unit, is_object_store, owner_name};
pub(super) use writer::{Cut, Writer, start};
