//! The `adstream` command.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    fix_mmap_threshold();
    let cli = adstream::cli::Cli::parse();
    // A compile child compiles and exits: no runtime, no threads, so its memory limit
    // measures the compiler.
    if let adstream::cli::Command::CompilePlugin {
        out,
        memory,
        metered,
    } = &cli.command
    {
        return adstream::plugin::serve_compile(out, *memory, *metered);
    }
    adstream::cli::init_logging(cli.log.as_deref(), cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting tokio");
    runtime.block_on(adstream::cli::main(cli))
}

/// glibc raises its mmap threshold to the size of any large block freed; blocks that size
/// (a stateful stage's snapshots, its replay log) then come from the heap, which they
/// fragment and which is not given back. With the threshold fixed at 1 MiB, blocks that
/// large are mapped and unmapped on their own, and batches stay on the heap: the demo's
/// peak resident memory over 60 s went from 84 MiB to 76 (docs/performance.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    // SAFETY: mallopt only changes the allocator's settings; it runs before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}
