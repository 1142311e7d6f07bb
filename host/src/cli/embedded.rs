//! What the binary carries so that it runs with no checkout beside it (`cargo install
//! --path host`, a container image): the shipped pipelines and plugins, for `demo` and
//! `init`, and the SDK's sources with the WIT, for `new` (`host/build.rs` embeds them).

use std::path::{Path, PathBuf};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use generated::{PLUGINS, SDK_FILES};

/// The shipped pipeline files.
pub const PIPELINES: &[(&str, &str)] = &[
    ("demo.toml", include_str!("../../../pipelines/demo.toml")),
    (
        "ad-metrics.toml",
        include_str!("../../../pipelines/ad-metrics.toml"),
    ),
    (
        "alert-delivery.toml",
        include_str!("../../../pipelines/alert-delivery.toml"),
    ),
    (
        "shop-demo.toml",
        include_str!("../../../pipelines/shop-demo.toml"),
    ),
    ("shop.toml", include_str!("../../../pipelines/shop.toml")),
];

/// The text of shipped pipeline `name`.
pub fn pipeline(name: &str) -> &'static str {
    let found = PIPELINES.iter().find(|(n, _)| *n == name);
    found.expect("a shipped pipeline").1
}

/// The pipelines and plugins as they are laid out in `dir` (`pipelines/*.toml` and
/// `plugins/dist/*.wasm`, where the pipelines' plugin paths lead), by path.
pub fn layout(dir: &Path) -> Vec<(PathBuf, &'static [u8])> {
    let pipelines = (PIPELINES.iter()).map(|(n, t)| (dir.join("pipelines").join(n), t.as_bytes()));
    let plugins = (PLUGINS.iter()).map(|(n, b)| (dir.join("plugins/dist").join(n), *b));
    pipelines.chain(plugins).collect()
}

/// Writes `files`, leaving alone those that already hold the same bytes; with `replace`
/// false, one that holds other bytes (a user's edit) is an error and nothing is written.
pub fn write_all(files: &[(PathBuf, &[u8])], replace: bool) -> Result<usize, String> {
    let differs = |p: &Path, b: &[u8]| std::fs::read(p).map_or(true, |old| old != b);
    if !replace && let Some((p, _)) = files.iter().find(|(p, b)| p.exists() && differs(p, b)) {
        return Err(format!(
            "{} exists and differs; nothing was written (move it away, or choose another folder)",
            p.display()
        ));
    }
    let mut written = 0;
    for (path, bytes) in files.iter().filter(|(p, b)| differs(p, b)) {
        let parent = path.parent().expect("a file in a folder");
        std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(path, bytes))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// The folder `demo` reads its pipeline and plugins from: this version's copy under the
/// user's data folder (`$XDG_DATA_HOME/adstream`, or `~/.local/share/adstream`), written
/// from the binary when missing or different.
pub fn demo_home() -> Result<PathBuf, String> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or("neither XDG_DATA_HOME nor HOME is set: no folder for the demo's plugins")?;
    let dir = data.join("adstream").join(env!("CARGO_PKG_VERSION"));
    write_all(&layout(&dir), true)?;
    Ok(dir.join("pipelines"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_plugin_and_the_sdk_are_embedded() {
        let names: Vec<&str> = PLUGINS.iter().map(|(n, _)| *n).collect();
        for want in [
            "pii_hash.wasm",
            "quality.wasm",
            "window_aggregate.wasm",
            "anomaly_ema.wasm",
            "slack_format.wasm",
        ] {
            assert!(names.contains(&want), "{names:?}");
        }
        assert!(PLUGINS.iter().all(|(_, b)| b.starts_with(b"\0asm")));
        let sdk: Vec<&str> = SDK_FILES.iter().map(|(n, _)| *n).collect();
        for want in [
            "Cargo.toml",
            "src/lib.rs",
            "src/bindings.rs",
            "wit/adstream.wit",
        ] {
            assert!(sdk.contains(&want), "{sdk:?}");
        }
    }

    #[test]
    fn a_users_edit_is_never_overwritten_by_init() {
        let dir = tempfile::tempdir().unwrap();
        let files = layout(dir.path());
        assert_eq!(write_all(&files, false).unwrap(), files.len());
        assert_eq!(
            write_all(&files, false).unwrap(),
            0,
            "the same bytes are left alone"
        );
        let edited = dir.path().join("pipelines/demo.toml");
        std::fs::write(&edited, "# mine").unwrap();
        assert!(
            write_all(&files, false)
                .unwrap_err()
                .contains("exists and differs")
        );
        assert_eq!(std::fs::read_to_string(&edited).unwrap(), "# mine");
        assert_eq!(write_all(&files, true).unwrap(), 1);
    }
}
