//! Host-side work on columnar batches: decoding JSON records into columns, and encoding
//! rows back into JSON for sinks and dead letters. The batch type itself is the SDK's, so
//! host and plugins share one definition of the layout.

pub mod decode;
pub mod encode;
