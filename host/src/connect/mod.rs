//! Talking to the outside world, shared by sources and sinks: the Kafka client setup, TLS
//! for the other services, and the retry policy every sink uses.

pub mod kafka;
pub mod retry;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, for object-safe async traits (sources and sinks are trait objects).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
