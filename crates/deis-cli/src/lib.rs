//! `deis`, the developer's client, a drop-in for the Deis v1.13 client: the same command names,
//! shortcuts, flags, settings file (`~/.deis/client.json`) and output texts, against the
//! controller's REST API. It is not an SDK: commands print for people and exit 0 or 1.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool prints

mod appname;
mod cli;
mod client;
mod commands;
mod error;
mod settings;

use clap::Parser;

/// Runs one command line; the process's exit status.
pub fn run(args: Vec<String>) -> i32 {
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                ErrorKind::InvalidSubcommand => {
                    eprintln!("Found no matching command, try 'deis help'");
                    1
                }
                _ => {
                    let _ = e.print();
                    1
                }
            };
        }
    };
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
