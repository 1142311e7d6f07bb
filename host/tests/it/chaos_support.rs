//! What the failure tests do to the world: run the `adstream` binary on the shipped
//! pipeline files, kill it, stop it, and watch its memory.

use super::support::root;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The host process, run as a user runs it.
pub struct Host {
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub starts: u32,
    /// Length of the log when the newest process started.
    log_from: usize,
}

impl Host {
    pub fn new(dir: &Path, env: Vec<(String, String)>) -> Host {
        Host {
            dir: dir.to_path_buf(),
            env,
            child: None,
            starts: 0,
            log_from: 0,
        }
    }

    /// `adstream run pipelines/ad-metrics.toml pipelines/alert-delivery.toml`, logging
    /// to `host.log` in the run's folder.
    pub fn start(&mut self) {
        self.log_from =
            std::fs::metadata(self.dir.join("host.log")).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("host.log"))
            .unwrap();
        let pipelines = root().join("pipelines");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_adstream"));
        cmd.args(["run", "--status-addr", "off", "--no-watch"])
            .arg(pipelines.join("ad-metrics.toml"))
            .arg(pipelines.join("alert-delivery.toml"))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
        self.starts += 1;
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no flush, no checkpoint, nothing.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then waits: how long the host took to exit, and whether it exited cleanly.
    pub fn term(&mut self) -> (Duration, bool) {
        let mut child = self.child.take().expect("running");
        let began = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        (began.elapsed(), status.success())
    }

    /// Waits until both pipelines of the newest start say they run.
    pub fn wait_running(&self, timeout: Duration) -> bool {
        let began = Instant::now();
        while began.elapsed() < timeout {
            let log = std::fs::read(self.dir.join("host.log")).unwrap_or_default();
            let newest = String::from_utf8_lossy(log.get(self.log_from..).unwrap_or_default());
            if newest.matches(" running ").count() >= 2 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Resident memory of the host, in bytes.
    pub fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Whether the host is still running (it has not crashed).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The last lines of the host's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("host.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The checkpoint file of the metrics pipeline, and when it was last written.
    pub fn checkpoint_time(&self) -> Option<std::time::SystemTime> {
        let file = self.dir.join("state/ad-metrics.checkpoint");
        std::fs::metadata(file).and_then(|m| m.modified()).ok()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits (up to `timeout`) for the next checkpoint after the current one, then a few ms
/// more: the moment the issue found most dangerous to be killed at.
pub fn just_after_checkpoint(host: &Host, timeout: Duration) -> bool {
    let before = host.checkpoint_time();
    let began = Instant::now();
    while began.elapsed() < timeout {
        if host.checkpoint_time() != before && host.checkpoint_time().is_some() {
            std::thread::sleep(Duration::from_millis(10));
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// One line of the summary table.
pub struct Fault {
    pub what: String,
    pub times: u32,
    pub note: String,
}

pub fn print_summary(faults: &[Fault], result: &[String]) {
    println!("\n{:<52} {:>5}  seen", "fault", "times");
    println!("{}", "-".repeat(100));
    for f in faults {
        println!("{:<52} {:>5}  {}", f.what, f.times, f.note);
    }
    println!("{}", "-".repeat(100));
    for r in result {
        println!("{r}");
    }
    println!();
}
