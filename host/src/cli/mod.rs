//! Command-line interface: `adstream demo`, `check`, `run`, `status`, `generate`, `test`, `new`,
//! `replay`.

pub mod check;
mod demo;
mod embedded;
pub mod generate;
mod inspect;
mod new;
mod replay;
mod run;
mod sample;
mod scenario;
mod serve;
pub mod status;
mod test;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "adstream",
    version,
    about = "Stream processing for ad events, with WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter, e.g. `info` or `adstream=debug` (default: `info`, or RUST_LOG).
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "ADSTREAM_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the built-in demo: generated ad traffic with the four seed anomalies, through
    /// PII hashing, quality checks, windowed metrics, anomaly rules and Slack formatting
    /// (`--pipeline shop`: the e-commerce pipeline, its sales, top products, funnel,
    /// payment matching and its own four anomalies).
    Demo {
        /// Seconds to run (the four anomalies all fire within the first 60).
        #[arg(long, default_value_t = 65)]
        duration: u64,
        /// Which demo: `ads` (seed 001's ad monitoring) or `shop` (seed 000's shop).
        #[arg(long, value_enum, default_value_t = demo::Demo::Ads)]
        pipeline: demo::Demo,
        /// Folder for the JSONL results.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        #[command(flatten)]
        status: serve::StatusServe,
    },
    /// Write the shipped pipelines and plugins into a folder (pipelines/*.toml and
    /// plugins/dist/*.wasm) to run and edit; a file there that differs is never replaced.
    Init {
        /// The folder to write into.
        #[arg(default_value = "adstream")]
        dir: PathBuf,
    },
    /// Check pipeline files (parse them, load every plugin, configure every stage, report
    /// every problem as file:line:col) or plugins (`.wasm`: role, world, version, imports;
    /// with --config and --input, the columns it declares).
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check everything but the secrets' values: secrets from the environment or files
        /// are not read (plugins are configured with a placeholder), for a CI job that
        /// lints pipelines without production secrets.
        #[arg(long)]
        no_environment: bool,
        /// A plugin's config, as JSON (for `.wasm` files).
        #[arg(long)]
        config: Option<String>,
        /// Sample events, one JSON object per line, whose columns a plugin is configured
        /// with (for `.wasm` files).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Run a plugin over sample events as the host would and compare its output with the
    /// expected rows; a case file (`.toml`) holds several cases.
    Test(test::TestArgs),
    /// Start a plugin project: an example rule of the role, its tests, sample input and
    /// expected output.
    New(new::NewArgs),
    /// Run a pipeline over recorded events into files (no services touched); with
    /// --swap STAGE=NEW.wasm, run it again with a new version of a stage and report what
    /// would change.
    Replay(replay::ReplayArgs),
    /// Run pipelines until Ctrl-C, SIGTERM or the duration's end. A stop finishes the batch
    /// in flight and flushes every sink; a pipeline with a checkpoint saves its open windows
    /// in it (the next run completes them), one without flushes them. Rebuilt plugins and
    /// edited pipeline files are applied while they run.
    Run {
        /// Pipeline files, or folders whose `*.toml` files are pipelines (a file added to
        /// such a folder later starts too).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
        #[command(flatten)]
        status: serve::StatusServe,
        /// Do not watch plugin and pipeline files for changes.
        #[arg(long)]
        no_watch: bool,
    },
    /// Show what a running host runs: pipelines, stages, plugin versions and hashes, and
    /// the history of swaps and edits.
    Status(status::StatusArgs),
    /// Produce realistic ad events (and anomaly scenarios) to a Kafka topic.
    Generate(generate::GenerateArgs),
    /// Compile a component read from stdin into a file of machine code (the host runs this
    /// as a child process; see `plugin/child.rs`).
    #[command(name = "compile-plugin", hide = true)]
    CompilePlugin {
        /// The cache entry: the file is named by it and the code's checksum.
        #[arg(long)]
        out: PathBuf,
        /// The child's address-space limit, in bytes.
        #[arg(long)]
        memory: u64,
        #[arg(long)]
        metered: bool,
    },
}

pub async fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Demo {
            duration,
            pipeline,
            out,
            status,
        } => demo::demo(pipeline, duration, &out, &status).await,
        Command::Init { dir } => init(&dir),
        Command::Check {
            files,
            no_environment,
            config,
            input,
        } => {
            if no_environment {
                crate::config::secret::leave_secrets_unread();
            }
            check::check(&files, config.as_deref(), input.as_deref())
        }
        Command::Test(args) => test::test(args).await,
        Command::New(args) => new::new(args),
        Command::Replay(args) => replay::main(args).await,
        Command::Run {
            files,
            duration,
            status,
            no_watch,
        } => {
            run::run(
                &files,
                run::RunOptions {
                    duration,
                    status,
                    watch: !no_watch,
                },
            )
            .await
        }
        Command::Status(args) => status::status(args),
        Command::Generate(args) => generate::generate(args).await,
        Command::CompilePlugin {
            out,
            memory,
            metered,
        } => crate::plugin::serve_compile(&out, memory, metered),
    }
}

/// The plugin engine of a command: plugins are compiled in child processes, so that
/// compiling costs the host no resident memory.
fn engine() -> Result<crate::plugin::PluginEngine, String> {
    crate::plugin::PluginEngine::new()
        .and_then(|e| e.compile_in(crate::plugin::CompileChild::this_exe()))
        .map_err(|e| format!("cannot start the WebAssembly engine: {e:#}"))
}

/// Logs go to stderr, so that stdout carries only what sinks print.
/// `adstream init DIR`.
fn init(dir: &std::path::Path) -> ExitCode {
    match embedded::write_all(&embedded::layout(dir), false) {
        Ok(n) => {
            println!(
                "wrote {n} files into {}/: the shipped pipelines (pipelines/) and plugins (plugins/dist/)\n\n  adstream check {0}/pipelines/*.toml\n  adstream run {0}/pipelines/demo.toml",
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

pub fn init_logging(filter: Option<&str>, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        // One JSON object per line, for a log collector: time, level, message and fields.
        LogFormat::Json => logs.json().flatten_event(true).try_init(),
    };
}

/// How log lines are written to stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For a person at a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}
