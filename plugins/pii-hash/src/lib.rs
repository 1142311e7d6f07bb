//! `pii-hash`: a transform that hashes personal ids with a secret key, truncates IP
//! addresses and drops fields, before anything is stored.
//!
//! ```toml
//! [[stage]]
//! name = "pii"
//! plugin = "../plugins/dist/pii_hash.wasm"
//! secrets.key = { env = "ADSTREAM_PII_KEY" }
//! config = { hash = ["user_id", "device_id"], truncate_ip = ["ip"], drop = [] }
//! ```
//!
//! `prefix = { postcode = 3 }` keeps the first characters of a value (a postcode's
//! district) and drops the rest.
//!
//! The key comes only from the stage's `key` secret, resolved by the host; a missing or
//! short key is a configuration error. Hashes are lowercase hex of the first
//! `output_bytes` bytes of HMAC-SHA256 (default) or keyed BLAKE3.

mod ip;
mod keyed;
mod prefix;

use adstream_sdk::{
    Batch, Column, ConfigExt, Dict, Field, FieldsExt, PluginError, STRING_KINDS, Setup, Strings,
    Transform, Values, count, export_transform,
};
use keyed::{Algorithm, KeyedHash};
use serde::Deserialize;

/// Shortest key accepted: a key anyone can guess makes the hashes reversible by brute
/// force over the id space.
const MIN_KEY_BYTES: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    hash: Vec<String>,
    #[serde(default)]
    truncate_ip: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
    #[serde(default)]
    prefix: std::collections::BTreeMap<String, usize>,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default = "default_output_bytes")]
    output_bytes: usize,
}

fn default_output_bytes() -> usize {
    16
}

/// What happens to one input column.
#[derive(Clone, Copy, PartialEq)]
enum Action {
    Keep,
    Hash,
    TruncateIp,
    Drop,
    /// Keep this many characters.
    Prefix(usize),
}

/// The configured transform.
pub struct PiiHash {
    hasher: KeyedHash,
    actions: Vec<(String, Action)>,
}

fn invalid(msg: String) -> PluginError {
    PluginError::InvalidConfig(msg)
}

impl PiiHash {
    fn plan(cfg: &Config, input: &[Field]) -> Result<Vec<(String, Action)>, PluginError> {
        let named = [
            (&cfg.hash, Action::Hash),
            (&cfg.truncate_ip, Action::TruncateIp),
        ];
        for (names, _) in named {
            for name in names {
                input.require(name, STRING_KINDS)?;
            }
        }
        for name in cfg.prefix.keys() {
            input.require(name, STRING_KINDS)?;
        }
        for name in &cfg.drop {
            if input.get_field(name).is_none() {
                return Err(PluginError::SchemaMismatch(format!(
                    "`drop` names `{name}`, which the input does not have"
                )));
            }
        }
        let action_of = |name: &String| {
            let mut found = (named.iter())
                .filter(|(n, _)| n.contains(name))
                .map(|(_, a)| *a)
                .chain(cfg.drop.contains(name).then_some(Action::Drop))
                .chain(cfg.prefix.get(name).map(|&n| Action::Prefix(n)));
            let action = found.next().unwrap_or(Action::Keep);
            if found.next().is_some() {
                return Err(invalid(format!("`{name}` is named by more than one rule")));
            }
            Ok(action)
        };
        input
            .iter()
            .map(|f| Ok((f.name.clone(), action_of(&f.name)?)))
            .collect()
    }

    /// Hashes every value of a string column; a dictionary column hashes each distinct
    /// value once and keeps its keys.
    fn hash_column(&self, col: Column) -> Column {
        let values = match col.values {
            Values::Dictionary(d) => Values::Dictionary(Dict {
                keys: d.keys,
                values: self.hash_strings(&d.values),
            }),
            Values::Text(s) => Values::Text(self.hash_strings(&s)),
            other => other,
        };
        Column { values, ..col }
    }

    fn hash_strings(&self, s: &Strings) -> Strings {
        let rows = s.offsets.len().saturating_sub(1);
        let hex = self.hasher.hex_len();
        let mut bytes = Vec::with_capacity(rows * hex);
        let mut previous: Option<&[u8]> = None;
        for w in s.offsets.windows(2) {
            let value = s.bytes.get(w[0] as usize..w[1] as usize).unwrap_or(&[]);
            if previous == Some(value) {
                // The events of one ad request follow each other and share their ids:
                // the hash just written is this one.
                bytes.extend_from_within(bytes.len() - hex..);
            } else {
                self.hasher.hash_hex_into(value, &mut bytes);
            }
            previous = Some(value);
        }
        let offsets = (0..=rows).map(|i| (i * hex) as u32).collect();
        Strings { offsets, bytes }
    }
}

impl Transform for PiiHash {
    fn configure(setup: &Setup) -> Result<(Self, Vec<Field>), PluginError> {
        let cfg: Config = setup.config()?;
        let key = setup.secret("key")?;
        if key.len() < MIN_KEY_BYTES {
            return Err(invalid(format!(
                "secret `key` has {} bytes; use at least {MIN_KEY_BYTES} random bytes",
                key.len()
            )));
        }
        if !(4..=32).contains(&cfg.output_bytes) {
            return Err(invalid(format!(
                "output_bytes = {} (use 4 to 32)",
                cfg.output_bytes
            )));
        }
        let actions = Self::plan(&cfg, &setup.input)?;
        let output = setup
            .input
            .iter()
            .zip(&actions)
            .filter(|(_, (_, a))| *a != Action::Drop)
            .map(|(f, (_, a))| match a {
                Action::TruncateIp => Field {
                    nullable: true,
                    ..f.clone()
                },
                _ => f.clone(),
            })
            .collect();
        let hasher = KeyedHash::new(cfg.algorithm, key, cfg.output_bytes);
        Ok((PiiHash { hasher, actions }, output))
    }

    fn transform(&mut self, input: Batch) -> Result<Batch, PluginError> {
        let rows = input.rows;
        let mut columns = Vec::with_capacity(input.columns.len());
        for col in input.columns {
            let action = self
                .actions
                .iter()
                .find(|(n, _)| *n == col.name)
                .map(|(_, a)| *a);
            match action.unwrap_or(Action::Keep) {
                Action::Keep => columns.push(col),
                Action::Drop => {}
                Action::Hash => columns.push(self.hash_column(col)),
                Action::Prefix(n) => columns.push(prefix::column(col, n)),
                Action::TruncateIp => {
                    let (col, unparseable) = ip::truncate_column(&col, rows as usize)?;
                    if unparseable > 0 {
                        count("unparseable_ip", unparseable);
                    }
                    columns.push(col);
                }
            }
        }
        Ok(Batch { rows, columns })
    }
}

export_transform!(PiiHash);

#[cfg(test)]
mod tests;
