//! Logging and counters through the host. Natively (in unit tests) log lines go to stderr
//! and counters to a thread-local table that [`counts`](crate::log::counts) returns.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::host::{self, Level};

    pub fn log(level: u8, message: &str) {
        let level = match level {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            _ => Level::Error,
        };
        host::log(level, message);
    }

    pub fn count(name: &str, delta: u64) {
        host::count(name, delta);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static COUNTS: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn log(level: u8, message: &str) {
        eprintln!("[plugin level {level}] {message}");
    }

    pub fn count(name: &str, delta: u64) {
        COUNTS.with(|c| *c.borrow_mut().entry(name.to_string()).or_default() += delta);
    }

    pub fn counts() -> BTreeMap<String, u64> {
        COUNTS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }
}

/// Counters recorded natively since the last call (unit tests only).
#[cfg(not(target_arch = "wasm32"))]
pub use imp::counts;

/// Log at debug level.
pub fn log_debug(message: &str) {
    imp::log(0, message)
}
/// Log at info level.
pub fn log_info(message: &str) {
    imp::log(1, message)
}
/// Log at warn level.
pub fn log_warn(message: &str) {
    imp::log(2, message)
}
/// Log at error level.
pub fn log_error(message: &str) {
    imp::log(3, message)
}
/// Add `delta` to the stage's counter `name`.
pub fn count(name: &str, delta: u64) {
    imp::count(name, delta)
}
