//! Private service instances for the tests that stop, restart or configure a service
//! (`scripts/instance.sh`): each in a folder of its own, on free ports, stopped by its own
//! pid when dropped. The shared services (`scripts/services.sh`) are never touched.

use super::support::root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Instance {
    dir: PathBuf,
    name: String,
    /// What `start` printed: `port`, and `https_port` for ClickHouse with TLS.
    pub ports: BTreeMap<String, u16>,
}

fn script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts/instance.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/instance.sh {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Instance {
    /// Starts `name` (redis, clickhouse, kafka, chdb) under `dir` with `options` (e.g.
    /// `--persist`, `--tls CERTS`, `--password P`, `--sasl USER:PASSWORD`); fails loudly.
    pub fn start(dir: &Path, name: &str, options: &[&str]) -> Instance {
        let dir_text = dir.display().to_string();
        let mut args = vec!["start", &dir_text, name];
        args.extend(options);
        let out = script(&args);
        Instance {
            dir: dir.to_path_buf(),
            name: name.into(),
            ports: parse_ports(&out),
        }
    }

    pub fn port(&self) -> u16 {
        self.ports["port"]
    }

    fn act(&self, action: &str) -> String {
        script(&[action, &self.dir.display().to_string(), &self.name])
    }

    /// Stops it gracefully.
    pub fn stop(&self) {
        self.act("stop");
    }

    /// kill -9: a Redis without `--persist` loses what it held.
    pub fn kill(&self) {
        self.act("kill");
    }

    /// Stops and starts it again, on the same ports with the same options.
    pub fn restart(&mut self) {
        self.ports = parse_ports(&self.act("restart"));
    }
}

fn parse_ports(out: &str) -> BTreeMap<String, u16> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/instance.sh"))
            .args(["stop", &self.dir.display().to_string(), &self.name])
            .output();
    }
}

/// A test certificate authority and a server certificate for 127.0.0.1
/// (`scripts/tls-certs.sh`), in `dir`.
pub fn certificates(dir: &Path) -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/tls-certs.sh"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/tls-certs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}
