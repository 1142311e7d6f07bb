//! `adstream status [--addr ADDR] [--json]`: asks a running host what it runs.

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Where `adstream run` serves status unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The host's status address (`adstream run --status-addr`).
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// A file holding the host's status token (default: ADSTREAM_STATUS_TOKEN, when set).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
}

/// The most of a reply that is read: a host's status is kilobytes.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// How long the whole reply may take, however the peer trickles it.
const REPLY_TIME: Duration = Duration::from_secs(10);

/// GETs `path` from `addr` and returns the body; with `token`, as its bearer.
pub fn get(addr: &str, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("bad address {addr}"))?
        .next()
        .with_context(|| format!("bad address {addr}"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))
        .with_context(|| format!("no adstream host answers on {addr}; is `adstream run` running, with this --status-addr?"))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let until = Instant::now() + REPLY_TIME;
    let read = crate::config::bounded::read_at_most(Deadline { stream, until }, MAX_REPLY_BYTES);
    let bytes = read
        .with_context(|| format!("reading from {addr}"))?
        .with_context(|| {
            let most = crate::config::bounded::size(MAX_REPLY_BYTES);
            format!("{addr} sent more than {most}, which no adstream host sends")
        })?;
    let response = String::from_utf8_lossy(&bytes);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("{addr} sent no HTTP response"))?;
    if head.starts_with("HTTP/1.1 401") {
        anyhow::bail!(
            "{addr} needs its status token: set ADSTREAM_STATUS_TOKEN or give --token-file (a token that was given is not the host's)"
        );
    }
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!("{addr}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// A stream whose reads end at `until`, all of them together.
struct Deadline {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let late = || {
            let e = format!("the reply took longer than {REPLY_TIME:?}");
            std::io::Error::new(std::io::ErrorKind::TimedOut, e)
        };
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        self.stream.set_read_timeout(Some(left))?;
        // A read that the timeout ends fails as "would block" on Linux.
        self.stream.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => late(),
            _ => e,
        })
    }
}

/// The token, from `--token-file` or the environment.
fn token(args: &StatusArgs) -> anyhow::Result<Option<String>> {
    let secret = match &args.token_file {
        Some(f) => crate::config::SecretRef {
            file: Some(f.display().to_string()),
            ..Default::default()
        },
        None => match std::env::var(crate::supervisor::TOKEN_ENV) {
            Ok(t) => return Ok(Some(t)),
            Err(_) => return Ok(None),
        },
    };
    let value = secret.resolve("status token")?;
    Ok(Some(value.text()?.to_string()))
}

pub fn status(args: StatusArgs) -> ExitCode {
    let body = match token(&args).and_then(|t| get(&args.addr, "/status", t.as_deref())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(status) => {
            print!("{}", render(&status));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {} sent status that is not JSON: {e}", args.addr);
            ExitCode::FAILURE
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// One stage: its plugin and its counts.
fn stage_line(st: &Value) -> String {
    let (pl, stats) = (&st["plugin"], &st["stats"]);
    let hash = text(&pl["hash"]);
    format!(
        "  stage {:<14} {} {} {} sha256:{} loaded {}\n      {} rows in, {} out, {} failures, {} restarts{}{}\n",
        text(&st["name"]),
        text(&pl["role"]),
        text(&pl["name"]),
        text(&pl["version"]),
        crate::plugin::short_hash(&hash),
        text(&pl["loaded_at"]),
        text(&stats["rows_in"]),
        text(&stats["rows_out"]),
        text(&stats["failures"]),
        text(&stats["restarts"]),
        if stats["quarantined"] == Value::Bool(true) {
            ", QUARANTINED"
        } else {
            ""
        },
        stats["last_error"]
            .as_str()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default(),
    )
}

/// A stage's canary: how it compares, its verdict, and the first differences.
fn canary_lines(c: &Value) -> String {
    if c.is_null() {
        return String::new();
    }
    let d = &c["diff"];
    let mut out = format!(
        "      canary {} sha256:{} {}: {} calls, rows {} vs {}: {} same, {} changed, {} added, {} removed
",
        text(&c["version"]),
        crate::plugin::short_hash(&text(&c["hash"])),
        text(&c["state"]),
        text(&c["calls"]),
        text(&c["rows_current"]),
        text(&c["rows_candidate"]),
        text(&d["same"]),
        text(&d["changed"]),
        text(&d["added"]),
        text(&d["removed"]),
    );
    for line in [&c["error"], &c["verdict"]]
        .into_iter()
        .filter_map(Value::as_str)
    {
        out += &format!(
            "        {line}
"
        );
    }
    for e in d["examples"].as_array().into_iter().flatten().take(5) {
        out += &format!(
            "        {}
",
            text(e)
        );
    }
    out
}

/// The partitions a pipeline reads, with each one's lag where known.
fn partitions_line(p: &Value) -> String {
    let Some(parts) = p["partitions"].as_array().filter(|a| !a.is_empty()) else {
        return String::new();
    };
    let each: Vec<String> = parts
        .iter()
        .map(|n| {
            let lag = p["source_lag"][text(n)]
                .as_i64()
                .map(|l| format!("lag {l}"));
            let mark = p["partition_watermarks"][text(n)].as_str();
            let mark = mark.map(|w| format!("watermark {w}"));
            match [lag, mark].into_iter().flatten().collect::<Vec<_>>() {
                known if known.is_empty() => text(n),
                known => format!("{} ({})", text(n), known.join(", ")),
            }
        })
        .collect();
    let merging = match p["merging"].as_str() {
        Some("waiting") => {
            ", merges the hosts' windows (waiting for every partition's mark)".into()
        }
        Some(w) => format!(", merges the hosts' windows (watermark {w})"),
        None => String::new(),
    };
    format!(
        "\n  partitions {}, {} rebalances{merging}",
        each.join(", "),
        text(&p["rebalances"])
    )
}

/// The status as a person reads it.
pub fn render(s: &Value) -> String {
    let mut out = format!("host up since {}\n", text(&s["started_at"]));
    for p in s["pipelines"].as_array().into_iter().flatten() {
        out += &format!(
            "\npipeline {} ({}) from {}: {}\n  {} records, {} decode errors, {} dead letters, watermark {}, {} checkpoints (last {}){}{}\n",
            text(&p["name"]),
            text(&p["file"]),
            text(&p["source"]),
            text(&p["state"]),
            text(&p["records"]),
            text(&p["decode_errors"]),
            text(&p["dead_letters"]),
            text(&p["watermark"]),
            text(&p["checkpoints"]),
            text(&p["last_checkpoint"]),
            p["source_stalled"]
                .as_str()
                .map(|w| format!("\n  SOURCE STALLED: {w}"))
                .unwrap_or_default(),
            partitions_line(p),
        );
        for st in p["stages"].as_array().into_iter().flatten() {
            out += &stage_line(st);
            out += &canary_lines(&st["stats"]["canary"]);
        }
    }

    let changes = s["changes"].as_array().cloned().unwrap_or_default();
    if !changes.is_empty() {
        out += "\nchanges (newest last):\n";
    }
    for c in changes.iter().rev().take(20).rev() {
        out += &format!(
            "  {} {} {} {}{}: {}\n",
            text(&c["at"]),
            if c["accepted"] == Value::Bool(true) {
                "applied "
            } else {
                "REJECTED"
            },
            text(&c["kind"]),
            text(&c["pipeline"]),
            c["stage"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default(),
            text(&c["detail"]),
        );
    }
    out
}
