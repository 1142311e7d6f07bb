//! The keyed hash: HMAC-SHA256 or keyed BLAKE3, written as lowercase hex.

use hmac::{KeyInit, Mac};
use serde::Deserialize;

/// Which keyed hash to use.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// HMAC-SHA256: the same value can be computed in SQL or any language.
    #[default]
    HmacSha256,
    /// Keyed BLAKE3: faster; the 32-byte key is derived from the secret.
    Blake3,
}

enum State {
    Hmac(hmac::Hmac<sha2::Sha256>),
    /// The derived key: a value shorter than BLAKE3's 1 KiB chunk is one chunk's
    /// compressions from this key, without the tree hasher's 1.9 KB state to copy.
    Blake3([u8; 32]),
}

/// A hasher with its key already absorbed (HMAC: each value clones that state; BLAKE3:
/// the key derived once), so the key schedule runs once per stage, not once per value.
pub struct KeyedHash {
    state: State,
    out_bytes: usize,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl KeyedHash {
    /// A hasher for `key` that keeps the first `out_bytes` bytes of each digest.
    pub fn new(algorithm: Algorithm, key: &[u8], out_bytes: usize) -> Self {
        let state = match algorithm {
            Algorithm::HmacSha256 => State::Hmac(
                hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length"),
            ),
            Algorithm::Blake3 => State::Blake3(blake3::derive_key(
                "adstream pii-hash 2026 keyed blake3",
                key,
            )),
        };
        KeyedHash { state, out_bytes }
    }

    /// Length of one hex digest.
    pub fn hex_len(&self) -> usize {
        self.out_bytes * 2
    }

    /// Appends the hex digest of `value` to `out`.
    pub fn hash_hex_into(&self, value: &[u8], out: &mut Vec<u8>) {
        let mut digest = [0u8; 32];
        match &self.state {
            State::Hmac(h) => {
                let mut h = h.clone();
                h.update(value);
                digest.copy_from_slice(&h.finalize().into_bytes());
            }
            State::Blake3(key) => digest = *blake3::keyed_hash(key, value).as_bytes(),
        }
        for b in &digest[..self.out_bytes] {
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xF) as usize]);
        }
    }

    /// The hex digest of `value` as a string.
    #[cfg(test)]
    pub fn hash_hex(&self, value: &[u8]) -> String {
        let mut out = Vec::with_capacity(self.hex_len());
        self.hash_hex_into(value, &mut out);
        String::from_utf8(out).expect("hex is ASCII")
    }
}
