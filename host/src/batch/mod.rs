//! The records every layer above shares: raw records from a source ([`RawBatch`], with
//! their [`Position`]s), a decoded batch on its way through the stages ([`Envelope`]), and
//! the [`DeadLetters`] built from whatever could not be processed. Plus the work on
//! columnar batches: decoding JSON into columns and encoding rows back into JSON or lines.
//! The batch type itself is the SDK's, so host and plugins share one definition.

pub mod compare;
pub mod deadletter;
pub mod decode;
pub mod encode;
mod envelope;
pub mod interleave;
pub mod privacy;
mod raw;
pub mod render;

pub use deadletter::{Culprit, DeadLetters, Reason};
pub use envelope::Envelope;
pub use privacy::Privacy;
pub use raw::{Move, Position, RawBatch};
