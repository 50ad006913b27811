//! `deis`, the developer's client. Its commands (register, create, config:set, scale, logs, ...)
//! come with the CLI issue; today it parses the command line and says so.

#![allow(clippy::print_stdout)] // a command-line tool prints

use std::process::ExitCode;

use clap::Parser;

/// The Deis command-line client.
#[derive(Debug, Parser)]
#[command(name = "deis", version, about)]
struct Args {
    /// The command and its arguments, as for the Deis v1 client (`apps:create`, `config:set`, ...).
    #[arg(trailing_var_arg = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command.first() {
        None => {
            println!("deis {}: see `deis --help`", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(cmd) => {
            eprintln!("deis: `{cmd}` is not available yet in this version of the client");
            ExitCode::FAILURE
        }
    }
}
