//! The events every section uses: the generator's seed-shaped JSON (about 330 bytes an
//! event, 17 fields), written once to a file, and the pipelines that read it.

use adstream::batch::RawBatch;
use adstream::batch::decode::Decoder;
use adstream::config::PipelineConfig;
use adstream_sdk::Batch;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = r#"
[schema]
event_id = { type = "string", required = true }
event_time = { type = "timestamp_ms", required = true }
event_type = { type = "dict", required = true }
user_id = "string"
device_id = "string"
ip = "string"
country = { type = "dict", required = true }
ad_format = { type = "dict", required = true }
placement_id = "dict"
campaign_id = "dict"
advertiser_id = "dict"
network = "dict"
os = "dict"
app_id = "dict"
revenue = "f64"
cost = "f64"
conversion_value = "f64"
"#;

pub const PII: &str = r#"
[[stage]]
name = "pii"
plugin = "@PLUGINS@/pii_hash.wasm"
secrets.key = { insecure_value = "adstream-bench-key-NOT-A-SECRET" }
config = { hash = ["user_id", "device_id"], truncate_ip = ["ip"] }
"#;

pub const QUALITY: &str = r#"
[[stage]]
name = "quality"
plugin = "@PLUGINS@/quality.wasm"
config.rules = [
    { rule = "in_set", column = "event_type", values = ["request", "impression", "click", "conversion"] },
    { rule = "in_range", column = "revenue", min = 0.0, max = 10.0 },
    { rule = "matches", column = "country", pattern = "^[A-Z]{2}$" },
]
"#;

pub const WINDOWS: &str = r#"
[[stage]]
name = "windows"
plugin = "@PLUGINS@/window_aggregate.wasm"
config = { window = "1m", group_by = ["country", "ad_format"] }
"#;

pub const ANOMALIES: &str = r#"
[[stage]]
name = "anomalies"
plugin = "@PLUGINS@/anomaly_ema.wasm"
config = { min_impressions = 1000 }
to = ["out"]
"#;

pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist")
}

/// A pipeline reading `events` in batches of `batch` through `stages`, into files in
/// `dir`.
pub fn pipeline(dir: &Path, events: &Path, batch: usize, stages: &[&str]) -> PathBuf {
    let text = format!(
        "name = \"bench\"\ndead_letter = \"dead\"\n[source]\nkind = \"file\"\npath = \"{}\"\n\
         batch_size = {batch}\n{SCHEMA}{}\n[sink.out]\nkind = \"file\"\npath = \"{}\"\n\
         [sink.dead]\nkind = \"file\"\npath = \"{}\"\n",
        events.display(),
        stages.concat(),
        dir.join("out.jsonl").display(),
        dir.join("dead.jsonl").display(),
    )
    .replace("@PLUGINS@", &plugins_dir().display().to_string());
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load(path: &Path) -> PipelineConfig {
    adstream::config::load(path).unwrap_or_else(|d| panic!("{d:#?}"))
}

/// `count` generated events written to `dir/events.jsonl`; returns the file and its
/// records in batches of `batch`.
pub async fn events(dir: &Path, count: u64, batch: usize) -> (PathBuf, Vec<RawBatch>) {
    let cfg: adstream::config::source::GeneratorConfig = toml::from_str(&format!(
        "kind = \"generator\"\npace = false\nrate = 20000.0\nseed = 7\nstart = 1767225600000\n\
         count = {count}\nbatch_size = {batch}"
    ))
    .unwrap();
    let mut source = adstream::sources::generator::GeneratorSource::new(&cfg).unwrap();
    let path = dir.join("events.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut batches = Vec::new();
    while let Some(b) = adstream::sources::Source::next_batch(&mut source)
        .await
        .unwrap()
    {
        for i in 0..b.len() {
            file.write_all(b.record(i)).unwrap();
            file.write_all(b"\n").unwrap();
        }
        batches.push(b);
    }
    file.flush().unwrap();
    (path, batches)
}

/// The bytes of all records.
pub fn bytes(raw: &[RawBatch]) -> usize {
    raw.iter()
        .map(|b| (0..b.len()).map(|i| b.record(i).len()).sum::<usize>())
        .sum()
}

/// The decoder of the bench schema.
pub fn decoder(dir: &Path, events: &Path) -> Decoder {
    let cfg = load(&pipeline(dir, events, 5000, &[]));
    Decoder::new(&cfg.schema, "event_time", None)
}

/// `raw` decoded into batches.
pub fn decoded(decoder: &Decoder, raw: &[RawBatch]) -> Vec<Batch> {
    raw.iter().map(|r| decoder.decode(r).batch).collect()
}
