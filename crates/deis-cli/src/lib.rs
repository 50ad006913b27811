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

/// Whether `--json` was given.
pub(crate) static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs one command line; the process's exit status.
pub fn run(mut args: Vec<String>) -> i32 {
    // `deis help <command>` is `deis <command> --help`.
    if args.get(1).map(String::as_str) == Some("help") {
        args.remove(1);
        args.push("--help".to_owned());
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                ErrorKind::InvalidSubcommand => match plugin(&args) {
                    Some(code) => code,
                    None => {
                        eprintln!("Found no matching command, try 'deis help'");
                        1
                    }
                },
                _ => {
                    let _ = e.print();
                    1
                }
            };
        }
    };
    JSON.store(cli.json, std::sync::atomic::Ordering::Relaxed);
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// An unknown command `x[:rest]` runs the plugin `deis-x` from `PATH` with `rest` and the other
/// arguments, as the Deis client did; `None` when there is no such plugin.
fn plugin(args: &[String]) -> Option<i32> {
    let command = args.get(1)?;
    let (name, rest) = command.split_once(':').unwrap_or((command, ""));
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let program = format!("deis-{name}");
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file())?;
    let mut command = std::process::Command::new(found);
    if !rest.is_empty() {
        command.arg(rest);
    }
    command.args(&args[2..]);
    let status = command.status().ok()?;
    Some(status.code().unwrap_or(1))
}
