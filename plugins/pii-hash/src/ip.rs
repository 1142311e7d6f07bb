//! IP truncation: IPv4 keeps its /24, IPv6 its /48, the rest is zeroed. Values that are
//! not addresses become null (the raw value is exactly what must not be stored) and are
//! counted.

use adstream_sdk::{Column, DictBuilder, PluginError, TextBuilder, Values};
use std::net::IpAddr;

/// The truncated form of `text`, or `None` if it is not an IP address.
pub fn truncate(text: &str) -> Option<IpAddr> {
    match text.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(IpAddr::from([a, b, c, 0]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0]))
        }
    }
}

/// Writes `ip` as text; IPv4 (nearly every ad event) without the formatting machinery,
/// which costs more than the parse.
fn write_ip(ip: IpAddr, buf: &mut String) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push('.');
                }
                if octet >= 100 {
                    buf.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    buf.push(char::from(b'0' + octet / 10 % 10));
                }
                buf.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(_) => {
            use std::fmt::Write;
            let _ = write!(buf, "{ip}");
        }
    }
}

enum Out {
    Text(TextBuilder),
    Dict(DictBuilder),
}

/// Truncates every address in a string column; returns the new column and how many
/// values were not addresses.
pub fn truncate_column(col: &Column, rows: usize) -> Result<(Column, u64), PluginError> {
    let reader = col.as_text()?;
    let mut out = match col.values {
        Values::Dictionary(_) => Out::Dict(DictBuilder::default()),
        _ => Out::Text(TextBuilder::with_capacity(rows, rows * 12)),
    };
    let mut bad = 0;
    let mut buf = String::new();
    for row in 0..rows {
        let value = reader.get(row).and_then(|v| {
            let t = truncate(v);
            bad += u64::from(t.is_none());
            t
        });
        buf.clear();
        if let Some(ip) = value {
            write_ip(ip, &mut buf);
        }
        let value = value.map(|_| buf.as_str());
        match &mut out {
            Out::Text(b) => b.push_opt(value),
            Out::Dict(b) => b.push_opt(value),
        }
    }
    let col = match out {
        Out::Text(b) => b.finish(&col.name),
        Out::Dict(b) => b.finish(&col.name),
    };
    Ok((col, bad))
}
