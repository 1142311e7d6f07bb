//! Reading what the host is handed (a file, a peer's reply) within a bound of bytes: one far
//! larger than any real one is an error that names the bound, not the host's memory.

use std::io::Read;

/// The most a pipeline file may hold: the shipped ones are under 8 KiB.
pub const MAX_PIPELINE_BYTES: usize = 1 << 20;

/// The most a secret file may hold: keys, tokens and URLs are far smaller.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// All of `from`, or `None` when it holds more than `limit` bytes (of which no more than
/// one byte over is read).
pub fn read_at_most(from: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    from.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// `bytes` in KiB or MiB, as the bounds are shown.
pub fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_the_limit_is_read_and_one_byte_over_is_refused() {
        assert_eq!(read_at_most(&b"abcd"[..], 4).unwrap().unwrap(), b"abcd");
        assert_eq!(read_at_most(&b"abcde"[..], 4).unwrap(), None);
        // An endless reader ends one byte past the limit.
        assert_eq!(read_at_most(std::io::repeat(b'x'), 1 << 16).unwrap(), None);
        assert_eq!(size(MAX_PIPELINE_BYTES), "1 MiB");
        assert_eq!(size(MAX_SECRET_BYTES), "64 KiB");
    }
}
