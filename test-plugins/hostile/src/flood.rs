//! Modes that hand the host too much, or the wrong thing: each must be stopped at the
//! boundary by a budget or a check, with the host's memory, log and disk left bounded.

use super::out;
use adstream_sdk::{Batch, Column, PluginError, Strings, Values, count, log_warn};
use std::hash::BuildHasher;

/// The batch a mode returns, or `None` if the mode is not one of these.
pub fn run(mode: &str, rows: usize) -> Option<Result<Batch, PluginError>> {
    Some(match mode {
        // Rust's sleep is a WASI clock subscription and a poll.
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            out(&[], &[])
        }
        "sleep_loop" => loop {
            std::thread::sleep(std::time::Duration::from_millis(10));
        },
        "big_error" => Err(PluginError::InvalidInput("e".repeat(32 << 20))),
        "huge_value" => out(&[&"v".repeat(100 << 20)], &[1]),
        "big_value" => out(&[&"v".repeat(2 << 20)], &[1]),
        "log_flood" => {
            for i in 0..200_000 {
                log_warn(&format!("flood {i}\nINFO forged line"));
            }
            out(&[], &[])
        }
        "counter_flood" => {
            for i in 0..200_000 {
                count(&format!("c{i}\"}} 1"), 1);
            }
            out(&[], &[])
        }
        "bad_utf8" => Ok(not_utf8(rows.max(1))),
        "random" => {
            let r = std::collections::hash_map::RandomState::new().hash_one(0u8);
            out(&["random"], &[r as i64])
        }
        _ => return None,
    })
}

/// A `key` column whose bytes are not UTF-8 (assembled by hand: the SDK's builders take
/// text).
fn not_utf8(rows: usize) -> Batch {
    let bytes = vec![0xff; rows];
    let key = Column {
        name: "key".into(),
        values: Values::Text(Strings {
            offsets: (0..=rows as u32).collect(),
            bytes,
        }),
        valid: None,
    };
    let count = Column {
        name: "count".into(),
        values: Values::Int64(vec![1; rows]),
        valid: None,
    };
    Batch {
        rows: rows as u32,
        columns: vec![key, count],
    }
}
