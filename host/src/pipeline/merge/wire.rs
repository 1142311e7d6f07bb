//! A partials message: a header line (which stage's lane, which partition, its mark, and
//! which part of the lane's output this is), then one line of JSON per partial window row.
//! JSON keeps the message readable with any Kafka tool, and writes floats exactly
//! (shortest round-trip form, read back with `float_roundtrip`), so a sum merged on
//! another host is the sum one host would have made, to the bit.

use crate::batch::encode::write_row;
use adstream_sdk::Batch;
use serde::{Deserialize, Serialize};

/// A message stays under this many bytes unless one row alone is longer; a lane's output
/// over it is sent in parts (brokers refuse messages over 1 MB by default).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// The most parts one lane output may have (32 MiB of rows): the merging host holds the
/// parts until the last, so their count is bounded. A lane's output for one batch is a
/// row per group and window closed, far below it.
pub const MAX_PARTS: u32 = 64;

/// The longest header line read: a stage name is short; anything longer is damage.
const MAX_HEADER_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The spread aggregate stage whose lane wrote the rows.
    pub stage: String,
    /// The source partition the lane holds.
    pub partition: i32,
    /// How many partitions the source has: windows close once each has a mark.
    pub of: u32,
    /// The lane's watermark after the batch: its partition has nothing more before it.
    pub mark: i64,
    /// This message's place among the parts of one lane output (from 0), and their count.
    pub part: u32,
    pub parts: u32,
}

/// A lane's output for one batch as messages of at most [`MAX_MESSAGE_BYTES`] (a row
/// longer than that goes alone); at least one, so that a mark alone is sent.
pub fn encode(head: &Header, rows: &[&Batch], max_bytes: usize) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![Vec::new()];
    let mut line = Vec::new();
    for batch in rows {
        for r in 0..batch.rows as usize {
            line.clear();
            write_row(&mut line, batch, r);
            line.push(b'\n');
            let body = bodies.last_mut().expect("one body");
            if !body.is_empty() && body.len() + line.len() > max_bytes {
                bodies.push(Vec::new());
            }
            bodies
                .last_mut()
                .expect("one body")
                .extend_from_slice(&line);
        }
    }
    let parts = bodies.len() as u32;
    let messages = bodies.into_iter().enumerate().map(|(k, body)| {
        let head = Header {
            part: k as u32,
            parts,
            ..head.clone()
        };
        let mut out = serde_json::to_vec(&head).expect("a header is plain data");
        out.push(b'\n');
        out.extend(body);
        out
    });
    messages.collect()
}

/// The header and the row lines of a message.
pub fn decode(message: &[u8]) -> Result<(Header, Vec<&[u8]>), String> {
    let end = message.iter().position(|&b| b == b'\n');
    let (head, body) = match end {
        Some(n) if n <= MAX_HEADER_BYTES => (&message[..n], &message[n + 1..]),
        _ => return Err("no header line within 4096 bytes".into()),
    };
    let head: Header =
        serde_json::from_slice(head).map_err(|e| format!("a bad header line: {e}"))?;
    if head.parts == 0 || head.part >= head.parts || head.parts > MAX_PARTS {
        return Err(format!(
            "part {} of {} (at most {MAX_PARTS})",
            head.part, head.parts
        ));
    }
    let rows = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    Ok((head, rows.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use adstream_sdk::{F64Builder, I64Builder};

    fn rows(n: i64) -> Batch {
        let (mut start, mut revenue) = (I64Builder::with_capacity(0), F64Builder::with_capacity(0));
        for i in 0..n {
            start.push(i * 60_000);
            revenue.push(0.1 + i as f64 / 3.0);
        }
        Batch::from_columns(vec![
            start.finish("window_start"),
            revenue.finish("revenue"),
        ])
        .unwrap()
    }

    fn head() -> Header {
        Header {
            stage: "m".into(),
            partition: 4,
            of: 6,
            mark: 99,
            part: 0,
            parts: 1,
        }
    }

    #[test]
    fn rows_come_back_in_parts_of_bounded_size_with_floats_exact() {
        let batch = rows(100);
        let messages = encode(&head(), &[&batch], 1000);
        assert!(messages.len() > 3, "{}", messages.len());
        let mut lines = Vec::new();
        for (k, m) in messages.iter().enumerate() {
            assert!(m.len() <= 1000 + 200, "{}", m.len());
            let (h, rows) = decode(m).unwrap();
            assert_eq!((h.part, h.parts), (k as u32, messages.len() as u32));
            assert_eq!((h.partition, h.mark, h.of), (4, 99, 6));
            lines.extend(rows.iter().map(|r| String::from_utf8(r.to_vec()).unwrap()));
        }
        assert_eq!(lines.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&lines[7]).unwrap();
        assert_eq!(v["revenue"].as_f64().unwrap(), 0.1 + 7.0 / 3.0);
        assert_eq!(v["window_start"], 7 * 60_000);
    }

    #[test]
    fn a_mark_alone_is_one_message_and_damage_is_an_error() {
        let messages = encode(&head(), &[], MAX_MESSAGE_BYTES);
        assert_eq!(messages.len(), 1);
        assert_eq!(decode(&messages[0]).unwrap(), (head(), vec![]));
        assert!(decode(b"no newline").is_err());
        assert!(
            decode(b"{\"stage\":1}\n")
                .unwrap_err()
                .contains("bad header")
        );
        let bad = Header { part: 1, ..head() };
        let m = format!("{}\n", serde_json::to_string(&bad).unwrap());
        assert!(decode(m.as_bytes()).unwrap_err().contains("part 1 of 1"));
        let many = Header {
            parts: MAX_PARTS + 1,
            ..head()
        };
        let m = format!("{}\n", serde_json::to_string(&many).unwrap());
        assert!(decode(m.as_bytes()).unwrap_err().contains("at most 64"));
    }
}
