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
    if matches!(args.get(1).map(String::as_str), Some("run" | "apps:run")) {
        args = run_arguments(args);
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

/// `deis run` as Deis users type it: options (`-a/--app`, `--help`, `--json`) before the
/// command, or `-a <app>`/`--app <app>`/`--app=<app>` as the very last words after it (as the
/// Deis client's docopt read `deis run env --app=demo`); a `--` before the command makes
/// everything after it the command as typed. Words inside the command (`cp -a src dst`,
/// `grep -- -v`) are never taken. Returns the arguments with the options first and `--`
/// before the command, so that clap passes the command through.
fn run_arguments(args: Vec<String>) -> Vec<String> {
    let mut words = args.into_iter();
    let mut head: Vec<String> = words.by_ref().take(2).collect();
    let mut command: Vec<String> = Vec::new();
    let mut verbatim = false;
    // Options before the command starts.
    while let Some(word) = words.next() {
        match word.as_str() {
            "--" => {
                verbatim = true;
                break;
            }
            "-a" | "--app" => match words.next() {
                Some(app) => head.extend([word, app]),
                None => command.push(word),
            },
            w if w.starts_with("--app=")
                || (w.starts_with("-a") && w.len() > 2)
                || matches!(w, "-h" | "--help" | "--json") =>
            {
                head.push(word);
            }
            _ => {
                command.push(word);
                break;
            }
        }
    }
    command.extend(words);
    if !verbatim {
        // The app named at the very end, after the command.
        let n = command.len();
        if n >= 3 && matches!(command[n - 2].as_str(), "-a" | "--app") {
            let tail = command.split_off(n - 2);
            head.extend(tail);
        } else if n >= 2 && command[n - 1].starts_with("--app=") {
            let tail = command.split_off(n - 1);
            head.extend(tail);
        }
    }
    head.push("--".to_owned());
    head.extend(command);
    head
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

#[cfg(test)]
mod tests {
    use super::run_arguments;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn run_takes_the_app_option_anywhere_before_the_double_dash() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["env", "--app=demo"], &["--app=demo", "--", "env"]),
            (&["env", "-a", "demo"], &["-a", "demo", "--", "env"]),
            (&["-ademo", "ls", "-la"], &["-ademo", "--", "ls", "-la"]),
            (&["ls", "-la"], &["--", "ls", "-la"]),
            (
                &["-a", "x", "--", "echo", "--app=y", "-a", "z"],
                &["-a", "x", "--", "echo", "--app=y", "-a", "z"],
            ),
            (&["--", "-a"], &["--", "-a"]),
            (&["echo", "-a"], &["--", "echo", "-a"]),
            (&["--help"], &["--help", "--"]),
            // Words inside the command stay the command's.
            (
                &["grep", "--", "-v", "file"],
                &["--", "grep", "--", "-v", "file"],
            ),
            (
                &["cp", "-a", "src", "dst"],
                &["--", "cp", "-a", "src", "dst"],
            ),
            (&["ls", "-a", "/tmp"], &["-a", "/tmp", "--", "ls"]),
            (
                &["ls", "-a", "/tmp", "-l"],
                &["--", "ls", "-a", "/tmp", "-l"],
            ),
        ];
        for (given, want) in cases {
            let mut full = args(&["deis", "run"]);
            full.extend(args(given));
            let mut expected = args(&["deis", "run"]);
            expected.extend(args(want));
            assert_eq!(run_arguments(full), expected, "{given:?}");
        }
    }
}
