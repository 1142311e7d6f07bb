//! Checkpoints: one consistent cut of a pipeline — the source positions, the watermark,
//! every stateful stage's state and each rewindable sink's mark — taken at a batch boundary
//! and written only once every sink has made everything before it durable. `cut.rs` is the
//! processor's half (snapshots, positions, a barrier to every sink), `writer.rs` the task
//! that waits for the sinks' answers and writes, `file.rs` the file (postcard with a
//! checksum, written aside and renamed, the previous one kept).

mod cut;
mod file;
mod lock;
mod store;
mod writer;

pub use file::{Checkpoint, CheckpointError, load, path};
pub use lock::{Lock, lock};
pub use store::{Claim, Store, StoreError, Unit, owner_name};
pub(super) use writer::{Cut, Writer, start};
