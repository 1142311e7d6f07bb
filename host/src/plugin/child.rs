//! Compiling a plugin in a child process. The host runs its own executable as
//! `adstream compile-plugin`, hands it the component on stdin, and the child compiles it
//! into a file of the on-disk cache and exits; the host then maps the compiled code.
//! So what compiling needs — Cranelift's heap, and the pages of Cranelift's own machine
//! code — is never the host's resident memory, and a component that is slow or huge to
//! compile is bounded: in time by a deadline (the child is killed), in memory by the
//! child's address-space limit.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// The hidden subcommand a compile child runs.
pub const SUBCOMMAND: &str = "compile-plugin";

/// How long a compile may take: the largest shipped plugin takes 0.54 s here.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The compile child's address space (virtual memory: the executable's mapping, Cranelift's
/// heap, the compiled code): compiling the largest shipped plugin peaks at 31 MiB resident.
pub const MEMORY: u64 = 1 << 30;

/// Most bytes of a compile error kept; the rest of the child's stderr is read and dropped.
const MESSAGE_BYTES: u64 = 4 << 10;

/// Where and how plugins are compiled out of the host's process.
#[derive(Debug, Clone)]
pub struct CompileChild {
    exe: PathBuf,
    deadline: Duration,
    memory: u64,
}

/// Why a compile child did not compile a component.
pub(super) enum ChildError {
    /// The child could not be started: the host compiles in its own process instead.
    Spawn(std::io::Error),
    /// The component did not compile, or the child broke a bound; the reason says which.
    Failed(String),
}

impl CompileChild {
    /// Compiles in children running the host's own executable, within [`DEADLINE`] and
    /// [`MEMORY`]; `None` when the executable cannot be found.
    pub fn this_exe() -> Option<Self> {
        // On Linux, /proc/self/exe is the very file this process runs, even once an
        // upgrade has replaced it on disk: a newer binary's compiled code would not load
        // in this one.
        let own = Path::new("/proc/self/exe");
        let exe = match own.exists() {
            true => own.to_path_buf(),
            false => std::env::current_exe().ok()?,
        };
        Some(Self::new(exe, DEADLINE, MEMORY))
    }

    /// Children running `exe` (an `adstream` binary) within `deadline` and `memory` bytes.
    pub fn new(exe: PathBuf, deadline: Duration, memory: u64) -> Self {
        CompileChild {
            exe,
            deadline,
            memory,
        }
    }

    /// Compiles `bytes` for the plain or fuel-metered engine into the cache entry `out`
    /// (see [`write_entry`](super::disk::write_entry)).
    pub(super) fn compile(
        &self,
        bytes: &[u8],
        metered: bool,
        out: &Path,
    ) -> Result<(), ChildError> {
        let mut child = Command::new(&self.exe)
            .args(["--log", "off", SUBCOMMAND, "--out"])
            .arg(out)
            .arg("--memory")
            .arg(self.memory.to_string())
            .args(metered.then_some("--metered"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so that stopping it stops whatever it started too.
            .process_group(0)
            .spawn()
            .map_err(ChildError::Spawn)?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (status, message) = std::thread::scope(|s| {
            // A child that dies early makes the write fail; its status says why.
            s.spawn(move || stdin.write_all(bytes));
            let message = s.spawn(move || {
                let mut kept = Vec::new();
                let _ = (&mut stderr).take(MESSAGE_BYTES).read_to_end(&mut kept);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                String::from_utf8_lossy(&kept).trim().to_string()
            });
            let status = child.wait_timeout(self.deadline);
            if !matches!(status, Ok(Some(_))) {
                kill_group(child.id());
                let _ = child.wait();
            }
            (status, message.join().unwrap_or_default())
        });
        self.outcome(status, message)
    }

    /// What the child's exit `status` and its stderr `message` say of the compile.
    fn outcome(
        &self,
        status: std::io::Result<Option<ExitStatus>>,
        message: String,
    ) -> Result<(), ChildError> {
        match status {
            Ok(Some(s)) if s.success() => Ok(()),
            Ok(Some(s)) if s.code() == Some(1) && !message.is_empty() => {
                Err(ChildError::Failed(message))
            }
            Ok(Some(s)) => Err(ChildError::Failed(format!(
                "the compiler stopped ({s}; it may use at most {} MiB){}",
                self.memory >> 20,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ))),
            Ok(None) => Err(ChildError::Failed(format!(
                "compiling took longer than {:?}; the compiler was stopped",
                self.deadline
            ))),
            Err(e) => Err(ChildError::Failed(format!("waiting for the compiler: {e}"))),
        }
    }
}

/// The child's side: reads a component from stdin (at most
/// [`MAX_COMPONENT_BYTES`](super::compile::MAX_COMPONENT_BYTES)), compiles it into the cache entry `out`
/// and exits 0; a component that does not compile exits 1 with the reason on stderr.
pub fn serve(out: &Path, memory: u64, metered: bool) -> ExitCode {
    limit_address_space(memory);
    let bytes = match super::compile::read_bounded(std::io::stdin()) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            let limit = super::compile::MAX_COMPONENT_BYTES >> 20;
            eprintln!("the component is larger than {limit} MiB");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("reading the component: {e}");
            return ExitCode::FAILURE;
        }
    };
    match super::compile::compile_to(out, &bytes, metered) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

/// Kills the process group `pid` leads: the child and anything it started, which would
/// otherwise keep its stderr open.
fn kill_group(pid: u32) {
    // SAFETY: kill only sends a signal; a negative pid names the child's own group.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

fn limit_address_space(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's limit.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
}
