//! `adstream new ROLE NAME`: a plugin project of any role, outside this repository: an
//! example rule, its native unit tests, sample input with the expected output, the cases
//! `adstream test` runs, and a README. It builds to `wasm32-wasip2` with one command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `adstream new` was asked for.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// transform, validate, aggregate, detect or format.
    pub role: String,
    /// The plugin's name: lower-case letters, digits and `-`; also its folder.
    pub name: String,
    /// Depend on the SDK at this path (`plugins/sdk` of an adstream checkout, or
    /// $ADSTREAM_SDK) instead of the copy of this binary's SDK written into the project.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// One role's example: its source, sample, expected output, and how the cases run it.
struct Example {
    lib: &'static str,
    input: &'static str,
    expected: &'static str,
    config: &'static str,
    time_column: &'static str,
    dead_letters: usize,
}

macro_rules! example {
    ($role:literal, $config:literal, $time:literal, $dead:literal) => {
        Example {
            lib: include_str!(concat!("../../templates/new/", $role, "/lib.rs")),
            input: include_str!(concat!("../../templates/new/", $role, "/input.jsonl")),
            expected: include_str!(concat!("../../templates/new/", $role, "/expected.jsonl")),
            config: $config,
            time_column: $time,
            dead_letters: $dead,
        }
    };
}

fn example(role: &str) -> Option<Example> {
    Some(match role {
        "transform" => example!("transform", r#"{ column = "country" }"#, "event_time", 0),
        "validate" => example!(
            "validate",
            r#"{ column = "revenue", min = 0.0 }"#,
            "event_time",
            1
        ),
        "aggregate" => example!(
            "aggregate",
            r#"{ window = "1m", key = "country" }"#,
            "event_time",
            0
        ),
        "detect" => example!(
            "detect",
            r#"{ column = "events", threshold = 5 }"#,
            "window_start",
            0
        ),
        "format" => example!("format", r#"{ prefix = "[ads]" }"#, "alert_time", 0),
        _ => return None,
    })
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Where the project's SDK dependency points: a folder named by the author, or the copy
/// of this binary's SDK the project carries in `vendor/adstream-sdk` (with the WIT in
/// `wit/`), so that it builds anywhere, offline, against the interface this host speaks.
fn sdk(given: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let Some(path) = given
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ADSTREAM_SDK").map(PathBuf::from))
    else {
        return Ok(None);
    };
    let path = std::fs::canonicalize(&path).map_err(|e| {
        format!(
            "the SDK at {}: {e}; name it with --sdk PATH (plugins/sdk of an adstream checkout)",
            path.display()
        )
    })?;
    match path.join("Cargo.toml").is_file() {
        true => Ok(Some(path)),
        false => Err(format!(
            "{} is not the SDK: it has no Cargo.toml",
            path.display()
        )),
    }
}

/// The SDK's files as the project carries them: its manifest made standalone (what it
/// took from the adstream workspace written out), its sources, and the WIT.
fn vendored_sdk() -> Result<Vec<(String, String)>, String> {
    let file = |name: &str| {
        let found = super::embedded::SDK_FILES.iter().find(|(n, _)| *n == name);
        found.map(|(_, t)| *t).expect("an embedded SDK file")
    };
    let manifest = standalone(file("Cargo.toml"), file("workspace/Cargo.toml"))?;
    let mut out = vec![("vendor/adstream-sdk/Cargo.toml".to_string(), manifest)];
    for (name, text) in super::embedded::SDK_FILES {
        if name.starts_with("src/") {
            out.push((format!("vendor/adstream-sdk/{name}"), text.to_string()));
        }
    }
    out.push((
        "wit/adstream.wit".into(),
        file("wit/adstream.wit").to_string(),
    ));
    Ok(out)
}

/// `manifest` with every `workspace = true` replaced by what `workspace` defines.
fn standalone(manifest: &str, workspace: &str) -> Result<String, String> {
    let bad = |e: toml::de::Error| format!("the embedded SDK manifest: {e}");
    let mut m: toml::Table = toml::from_str(manifest).map_err(bad)?;
    let w: toml::Table = toml::from_str(workspace).map_err(bad)?;
    let inherited = |section: &str| {
        w["workspace"]
            .get(section)
            .and_then(|v| v.as_table())
            .cloned()
    };
    let (package, dependencies) = (inherited("package"), inherited("dependencies"));
    for (section, from) in [("package", package), ("dependencies", dependencies)] {
        let (Some(table), Some(from)) = (m.get_mut(section).and_then(|v| v.as_table_mut()), from)
        else {
            continue;
        };
        for (key, value) in table.iter_mut() {
            let inherits = value.get("workspace").and_then(|v| v.as_bool()) == Some(true);
            if let (true, Some(given)) = (inherits, from.get(key)) {
                *value = given.clone();
            }
        }
    }
    toml::to_string(&m).map_err(|e| e.to_string())
}

/// The files of the project, by path inside its folder.
fn files(role: &str, name: &str, sdk: &str, ex: &Example) -> Vec<(&'static str, String)> {
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    let json_config = toml::from_str::<toml::Table>(&format!("c = {}", ex.config))
        .ok()
        .and_then(|t| serde_json::to_string(&t["c"]).ok())
        .unwrap_or_default();
    let time_flag = match ex.time_column {
        "event_time" => String::new(),
        other => format!(" --time-column {other}"),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{role}}", role)
            .replace("{{sdk}}", sdk)
            .replace("{{wasm}}", &wasm)
            .replace("{{config_toml}}", ex.config)
            .replace("{{config}}", &json_config)
            .replace("{{time_flag}}", &time_flag)
    };
    let cases = format!(
        "# The cases `adstream test cases.toml` runs: each feeds its input through the built\n\
         # component as the host would and compares the output with the expected rows.\n\
         plugin = \"{wasm}\"\ntime_column = \"{}\"\n\n[[case]]\nname = \"the example rule on the sample\"\n\
         input = \"sample/input.jsonl\"\nexpect = \"sample/expected.jsonl\"\nconfig = {}\n\
         batch_size = 2\ndead_letters = {}\n",
        ex.time_column, ex.config, ex.dead_letters
    );
    vec![
        (
            "Cargo.toml",
            fill(include_str!("../../templates/new/Cargo.toml.tmpl")),
        ),
        (
            "README.md",
            fill(include_str!("../../templates/new/README.md.tmpl")),
        ),
        (
            "rust-toolchain.toml",
            include_str!("../../../rust-toolchain.toml").to_string(),
        ),
        (
            ".cargo/config.toml",
            include_str!("../../templates/new/cargo-config.toml").to_string(),
        ),
        (".gitignore", "/target\n".to_string()),
        ("src/lib.rs", fill(ex.lib)),
        ("sample/input.jsonl", ex.input.to_string()),
        ("sample/expected.jsonl", ex.expected.to_string()),
        ("cases.toml", cases),
    ]
}

fn create(args: &NewArgs) -> Result<PathBuf, String> {
    let ex = example(&args.role).ok_or(format!(
        "no role `{}`: transform, validate, aggregate, detect or format",
        args.role
    ))?;
    if !valid_name(&args.name) {
        return Err(format!(
            "`{}`: a name is lower-case letters, digits and `-`, starting with a letter",
            args.name
        ));
    }
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        return Err(format!(
            "{} exists already; nothing was written",
            dir.display()
        ));
    }
    let (dependency, mut extra) = match sdk(args.sdk.as_deref())? {
        Some(path) => (path.display().to_string(), Vec::new()),
        None => ("vendor/adstream-sdk".to_string(), vendored_sdk()?),
    };
    let project = files(&args.role, &args.name, &dependency, &ex);
    extra.extend(project.into_iter().map(|(p, t)| (p.to_string(), t)));
    for (path, text) in extra {
        let file = dir.join(path);
        let parent = file.parent().expect("a file in the project folder");
        std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&file, text))
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(dir)
}

pub fn new(args: NewArgs) -> ExitCode {
    match create(&args) {
        Ok(dir) => {
            println!(
                "created {} plugin `{}` in {}/\n\n  cd {}\n  cargo test                                     # the rule, natively\n  cargo build --release --target wasm32-wasip2   # the component\n  adstream test cases.toml                       # as the host runs it",
                args.role,
                args.name,
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
