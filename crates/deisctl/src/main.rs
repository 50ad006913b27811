//! `deisctl`, the operator's tool. Its commands (install, start, stop, config, list, ...) come
//! with the deisctl issue; today it parses the Deis v1 command line and says so.

#![allow(clippy::print_stdout)] // a command-line tool prints

use std::process::ExitCode;

use clap::Parser;

/// Deis control utility: installs, starts and configures the platform.
#[derive(Debug, Parser)]
#[command(name = "deisctl", version, about)]
struct Args {
    /// The command and its arguments, as for Deis v1's deisctl.
    #[arg(trailing_var_arg = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command.first() {
        None => {
            println!(
                "deisctl {}: see `deisctl --help`",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(cmd) => {
            eprintln!(
                "deisctl: `{cmd}` is not available yet in this version; run the platform with `cargo run -p deis-platform`"
            );
            ExitCode::FAILURE
        }
    }
}
