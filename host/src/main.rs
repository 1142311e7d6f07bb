//! The `adstream` command.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = adstream::cli::Cli::parse();
    adstream::cli::init_logging(cli.log.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting tokio");
    runtime.block_on(adstream::cli::main(cli))
}
