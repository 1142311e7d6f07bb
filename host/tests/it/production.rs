//! What a production deployment leans on, through the binary as an operator runs it: the
//! status endpoint refuses to be open without a token or on a taken port, `check
//! --no-environment` lints without secrets, logs come as JSON when asked, and every
//! example pipeline in the docs passes `check`.

use super::support::root;
use std::process::Command;

fn adstream() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_adstream"));
    c.env_remove("ADSTREAM_STATUS_TOKEN")
        .env("ADSTREAM_COMPILE_CACHE", "off");
    c
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `run` and `demo` check their status address before anything starts: beyond loopback
/// without a token, or a port already taken, is an error (exit 2), not a warning.
#[test]
fn the_status_endpoint_is_never_open_without_a_token_nor_silently_missing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("pipelines/demo.toml");
    let out = adstream()
        .args(["run", "--duration", "1", "--status-addr", "0.0.0.0:0"])
        .arg(&demo)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("refusing to serve the dashboard and /metrics on 0.0.0.0:0 without a token"),
        "{}",
        stderr(&out)
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = adstream()
        .args(["demo", "--duration", "1", "--status-addr", &addr])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot serve status on {addr}")),
        "{}",
        stderr(&out)
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "short\n").unwrap();
    let out = adstream()
        .args(["run", "--duration", "1", "--status-addr", "0.0.0.0:0"])
        .arg("--status-token-file")
        .arg(&token)
        .arg(&demo)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shorter than 16 bytes"),
        "{}",
        stderr(&out)
    );
}

/// A CI job that lints pipelines has no production secrets: `--no-environment` checks the
/// rest, and says nothing about the secrets' values.
#[test]
fn check_without_the_environment_lints_the_shipped_pipelines_without_their_secrets() {
    let files = [
        "pipelines/alert-delivery.toml",
        "pipelines/ad-metrics.toml",
        "pipelines/shop.toml",
        "pipelines/shop-demo.toml",
    ];
    let mut plain = adstream();
    plain.arg("check").args(files.map(|f| root().join(f)));
    let out = plain
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("ADSTREAM_PII_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SLACK_WEBHOOK_URL is not set"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("ADSTREAM_PII_KEY is not set"),
        "{}",
        stderr(&out)
    );

    let out = adstream()
        .arg("check")
        .arg("--no-environment")
        .args(files.map(|f| root().join(f)))
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("ADSTREAM_PII_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok: pipeline `alert-delivery`"), "{text}");
    assert!(text.contains("ok: pipeline `ad-metrics`"), "{text}");
    assert!(text.contains("ok: pipeline `shop`"), "{text}");
    assert!(text.contains("ok: pipeline `shop-demo`"), "{text}");

    // Everything else is still checked: a pipeline mistake fails as before.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(root().join(files[0])).unwrap();
    std::fs::write(
        &broken,
        text.replace("payload = \"payload\"", "payload = 7"),
    )
    .unwrap();
    let out = adstream()
        .args(["check", "--no-environment"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// `--log-format json`: every log line is one JSON object with a level and a message.
#[test]
fn logs_are_json_objects_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out = adstream()
        .args([
            "--log-format",
            "json",
            "demo",
            "--duration",
            "2",
            "--status-addr",
            "off",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let logs: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!logs.is_empty(), "{}", stderr(&out));
    for l in &logs {
        assert!(l["level"].is_string() && l["message"].is_string(), "{l}");
    }
}

/// Every whole pipeline the docs show (a ```toml block with a `[source]` and a `[schema]`;
/// fragments that show one setting are not whole) passes `check`,
/// read from where the docs' own relative plugin paths lead (a `pipelines/` folder beside
/// `plugins/`).
#[test]
fn every_example_pipeline_in_the_docs_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("plugins"), dir.path().join("plugins")).unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    let engine = adstream::plugin::PluginEngine::new().unwrap();
    let mut docs = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        docs.push(e.unwrap().path());
    }
    let mut checked = 0;
    for doc in docs
        .iter()
        .filter(|d| d.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(doc).unwrap();
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            if !(block.contains("[source]") && block.contains("[schema]")) {
                continue;
            }
            let file = dir.path().join(format!("pipelines/example-{i}.toml"));
            std::fs::write(&file, block).unwrap();
            let checked_file = adstream::cli::check::check_file(&engine, &file);
            assert!(
                checked_file.is_ok(),
                "{} block {i} fails check: {:#?}",
                doc.display(),
                checked_file.err()
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example pipeline found in the docs");
}

/// An installed binary needs no checkout: copied alone into an empty folder, with a fresh
/// home, it runs the demo, writes the shipped pipelines and plugins (`init`), checks and
/// runs them, and starts a plugin project that carries the SDK and the WIT it builds
/// against (`author.rs` builds such projects).
#[test]
fn the_binary_alone_runs_demo_init_check_run_and_new() {
    let (home, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bin = work.path().join("adstream");
    std::fs::copy(env!("CARGO_BIN_EXE_adstream"), &bin).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .current_dir(work.path())
            .env("HOME", home.path())
            .env("ADSTREAM_STATUS_ADDR", "off")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("ADSTREAM_SDK")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "adstream {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["demo", "--duration", "3", "--out", "demo-out"]);
    let windows = std::fs::read_to_string(work.path().join("demo-out/windows-10s.jsonl")).unwrap();
    assert!(windows.lines().count() > 0);

    let said = run(&["init", "site"]);
    assert!(said.contains("wrote"), "{said}");
    for file in [
        "pipelines/demo.toml",
        "pipelines/ad-metrics.toml",
        "plugins/dist/pii_hash.wasm",
    ] {
        assert!(work.path().join("site").join(file).is_file(), "{file}");
    }
    let checked = run(&[
        "check",
        "--no-environment",
        "site/pipelines/demo.toml",
        "site/pipelines/ad-metrics.toml",
        "site/pipelines/alert-delivery.toml",
    ]);
    assert_eq!(checked.matches(": ok: pipeline").count(), 3, "{checked}");
    run(&["run", "--duration", "2", "site/pipelines/demo.toml"]);

    run(&["new", "detect", "my-rule"]);
    let project = work.path().join("my-rule");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("path = \"vendor/adstream-sdk\""),
        "{manifest}"
    );
    let sdk = std::fs::read_to_string(project.join("vendor/adstream-sdk/Cargo.toml")).unwrap();
    assert!(!sdk.contains("workspace"), "{sdk}");
    assert!(project.join("wit/adstream.wit").is_file());
}

/// The deploy files, as far as this machine can try them: the systemd unit passes
/// `systemd-analyze verify` (no warning either) with its ExecStart on this binary, and the
/// container image's `adstream init` writes the pipelines its CMD runs, which pass `check`.
#[test]
fn the_systemd_unit_verifies_and_the_container_image_runs_what_init_writes() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("deploy/adstream.service")).unwrap();
    let unit = unit
        .replace("/usr/local/bin/adstream", env!("CARGO_BIN_EXE_adstream"))
        .replace("User=adstream", "User=root")
        .replace("Group=adstream", "Group=root");
    let file = dir.path().join("adstream.service");
    std::fs::write(&file, unit).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze (Debian's systemd) is needed for this test");
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert_eq!(stderr(&verified), "", "warnings from systemd-analyze");

    let image = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    let workdir = image
        .lines()
        .filter_map(|l| l.strip_prefix("WORKDIR "))
        .next_back()
        .unwrap();
    let init = image
        .lines()
        .find_map(|l| l.strip_prefix("RUN adstream init "))
        .unwrap();
    assert_eq!(init.trim(), workdir, "init writes where the image runs");
    let cmd: Vec<String> = image
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .map(|c| serde_json::from_str(c).unwrap())
        .unwrap();
    let out = adstream()
        .args(["init", "site"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<&String> = cmd.iter().filter(|a| a.ends_with(".toml")).collect();
    assert_eq!(cmd[0], "run");
    assert!(!files.is_empty());
    let out = adstream()
        .args(["check", "--no-environment"])
        .args(files)
        .current_dir(dir.path().join("site"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
