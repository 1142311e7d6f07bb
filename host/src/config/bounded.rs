//! Reading what the host is handed (a file, a peer's reply) within a bound of bytes: one far
//! larger than any real one is an error that names the bound, not the host's memory.

use std::io::Read;
use std::path::Path;

/// The most a pipeline file may hold: the shipped ones are under 8 KiB.
pub const MAX_PIPELINE_BYTES: usize = 1 << 20;

/// The most a secret file may hold: keys, tokens and URLs are far smaller.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// The most a file of sample events, expected rows or test cases (`adstream test`) may hold.
pub const MAX_SAMPLE_BYTES: usize = 256 << 20;

/// All of `from`, or `None` when it holds more than `limit` bytes (of which no more than
/// one byte over is read).
pub fn read_at_most(from: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    from.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// The text of the file at `path`, or why not: it cannot be read, holds more than `limit`
/// bytes, or is not UTF-8. `what` names the file in the reason ("the pipeline file").
pub fn read_text(path: &Path, limit: usize, what: &str) -> Result<String, String> {
    let read = std::fs::File::open(path).and_then(|f| read_at_most(f, limit));
    match read {
        Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            format!("{what} is not UTF-8 text (byte {at} is not)")
        }),
        Ok(None) => Err(format!(
            "{what} is larger than {}, the most one may be",
            size(limit)
        )),
        Err(e) => Err(format!("cannot read {what}: {e}")),
    }
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

    #[test]
    fn a_text_file_over_its_bound_or_not_utf8_or_missing_says_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "héllo").unwrap();
        assert_eq!(read_text(&path, 6, "the file").unwrap(), "héllo");
        let over = read_text(&path, 5, "the file").unwrap_err();
        assert_eq!(over, "the file is larger than 5 bytes, the most one may be");
        std::fs::write(&path, b"ab\xffcd").unwrap();
        let bad = read_text(&path, 64, "the file").unwrap_err();
        assert_eq!(bad, "the file is not UTF-8 text (byte 2 is not)");
        let gone = read_text(&dir.path().join("nope"), 64, "the file").unwrap_err();
        assert!(gone.starts_with("cannot read the file: "), "{gone}");
    }
}
