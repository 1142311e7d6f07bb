//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// A built plugin component (a shipped one, or a test plugin); fails loudly when the
/// plugins were not built.
pub fn plugin(name: &str) -> PathBuf {
    let file = format!("{name}.wasm");
    let shipped = root().join("plugins/dist").join(&file);
    let path = if shipped.is_file() {
        shipped
    } else {
        root().join("test-plugins/dist").join(&file)
    };
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh before the tests",
        path.display()
    );
    path
}

/// Writes `text` as a pipeline file in `dir` (plugin paths in it are relative to `dir`),
/// with `@PLUGINS@` and `@TEST_PLUGINS@` replaced by the absolute paths of `plugins/dist`
/// and `test-plugins/dist`.
pub fn pipeline_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let dist = root().join("plugins/dist");
    let test_dist = root().join("test-plugins/dist");
    let path = dir.join(name);
    let text = text
        .replace("@TEST_PLUGINS@", &test_dist.display().to_string())
        .replace("@PLUGINS@", &dist.display().to_string());
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads a JSONL file into values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The ad-event schema the reference plugins expect.
pub const AD_SCHEMA: &str = r#"
[schema]
event_id = { type = "string", required = true }
event_time = { type = "timestamp_ms", required = true }
event_type = { type = "dict", required = true }
user_id = "string"
device_id = "string"
ip = "string"
country = { type = "dict", required = true }
ad_format = { type = "dict", required = true }
network = "dict"
revenue = "f64"
cost = "f64"
"#;

/// The lines of a file, sorted (rows compared regardless of their order).
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The distinct `window_start`s of a JSON-lines file of windows, in order.
pub fn window_starts(path: &Path) -> Vec<i64> {
    let mut starts: Vec<i64> = read_jsonl(path)
        .iter()
        .filter_map(|r| r["window_start"].as_i64())
        .collect();
    starts.sort();
    starts.dedup();
    starts
}
