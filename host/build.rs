//! Embeds what an installed `adstream` needs to run with no checkout beside it: the shipped
//! plugins' components (for `demo` and `init`) and the SDK's sources with the WIT (for
//! `new`). The components are taken from `plugins/dist/` when `scripts/build-plugins.sh`
//! made them; a fresh checkout (`cargo install --path host`) builds the missing ones here,
//! for `wasm32-wasip2` with the `plugin` profile, into this build's own folder.

use std::env;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("..");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let mut code = String::from("/// The shipped plugins' components: (file name, bytes).\n");
    code += "pub const PLUGINS: &[(&str, &[u8])] = &[\n";
    for (package, file) in components(&root, &out) {
        let wasm = format!("{}.wasm", package.replace('-', "_"));
        writeln!(
            code,
            "    ({wasm:?}, include_bytes!({:?})),",
            file.display()
        )
        .unwrap();
    }
    code += "];\n\n/// The SDK's files, by path inside the SDK crate, and the WIT.\n";
    code += "pub const SDK_FILES: &[(&str, &str)] = &[\n";
    for (name, file) in sdk_files(&root) {
        writeln!(code, "    ({name:?}, include_str!({:?})),", file.display()).unwrap();
    }
    code += "];\n";
    // The whole plugins folder: its components appearing or changing in dist/, and the
    // sources the missing ones were built from.
    for dependency in ["plugins", "wit", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(dependency).display());
    }
    std::fs::write(out.join("embedded.rs"), code).expect("writing embedded.rs");
}

/// The plugin packages users deploy (every folder under `plugins/` but the SDK).
fn packages(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("plugins"))
        .expect("the plugins folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sdk")
        .collect();
    names.sort();
    names
}

/// Each package with its component: from `plugins/dist/`, or built here.
fn components(root: &Path, out: &Path) -> Vec<(String, PathBuf)> {
    let dist = |p: &str| {
        root.join("plugins/dist")
            .join(format!("{}.wasm", p.replace('-', "_")))
    };
    let packages = packages(root);
    let missing: Vec<&String> = packages.iter().filter(|p| !dist(p).is_file()).collect();
    let built = out.join("plugins-target/wasm32-wasip2/plugin");
    if !missing.is_empty() {
        build(root, out, &missing);
    }
    packages
        .iter()
        .map(|p| {
            let file = match dist(p).is_file() {
                true => dist(p),
                false => built.join(format!("{}.wasm", p.replace('-', "_"))),
            };
            (p.clone(), file)
        })
        .collect()
}

/// Builds `packages` for wasm32-wasip2 into `out`, as scripts/build-plugins.sh does.
fn build(root: &Path, out: &Path, packages: &[&String]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(out.join("plugins-target"));
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The host's own flags are not the plugins': the nested build starts from its own.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for wasm32-wasip2 failed (is the target installed? rustup target add wasm32-wasip2; or run scripts/build-plugins.sh first)"
    );
}

/// The SDK's manifest and sources, the WIT, and the workspace manifest the SDK's
/// manifest inherits from.
fn sdk_files(root: &Path) -> Vec<(String, PathBuf)> {
    let sdk = root.join("plugins/sdk");
    let mut files = vec![
        ("Cargo.toml".to_string(), sdk.join("Cargo.toml")),
        (
            "wit/adstream.wit".to_string(),
            root.join("wit/adstream.wit"),
        ),
        ("workspace/Cargo.toml".to_string(), root.join("Cargo.toml")),
    ];
    let mut sources: Vec<PathBuf> = std::fs::read_dir(sdk.join("src"))
        .expect("the SDK's sources")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    sources.sort();
    for s in sources {
        let name = format!("src/{}", s.file_name().expect("a file").to_string_lossy());
        files.push((name, s));
    }
    files
}
