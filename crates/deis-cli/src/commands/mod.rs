//! What each command does, grouped as the Deis client groups them.

mod app_config;
mod apps;
mod auth;
mod builds;
mod certs;
mod config;
mod domains;
mod git;
mod keys;
mod limits;
mod perms;
mod ps;
mod releases;
mod tags;
mod users;

use crate::appname;
use crate::cli::{AppFlag, Command};
use crate::client::Client;
use crate::error::CliError;
use crate::settings::Settings;

/// A logged-in session: the settings and a client of their controller.
pub(crate) struct Session {
    pub(crate) settings: Settings,
    pub(crate) client: Client,
}

impl Session {
    fn open() -> Result<Session, CliError> {
        let settings = Settings::require()?;
        let client = Client::from_settings(&settings);
        Ok(Session { settings, client })
    }

    /// The app of `flag` (or detected).
    pub(crate) fn app(&self, flag: &AppFlag) -> String {
        appname::detect(flag.app.as_deref(), &self.settings.controller)
    }
}

/// Runs a parsed command; its exit status.
pub(crate) fn dispatch(command: Command) -> Result<i32, CliError> {
    use Command as C;
    match command {
        C::Register {
            controller,
            username,
            password,
            email,
            ssl_verify,
        } => auth::register(&controller, username, password, email, ssl_verify),
        C::Login {
            controller,
            username,
            password,
            ssl_verify,
        } => auth::login(&controller, username, password, ssl_verify),
        C::Logout => auth::logout(),
        C::Version => {
            println!("{}", crate::client::CLIENT_VERSION);
            Ok(0)
        }
        C::Completions { shell } => {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "deis", &mut std::io::stdout());
            Ok(0)
        }
        other => {
            let session = Session::open()?;
            run_logged_in(&session, other)
        }
    }
}

fn run_logged_in(s: &Session, command: Command) -> Result<i32, CliError> {
    use Command as C;
    match command {
        C::Whoami => auth::whoami(s),
        C::Passwd {
            password,
            new_password,
        } => auth::passwd(s, password, new_password),
        C::Cancel {
            username,
            password,
            yes,
        } => auth::cancel(s, username, password, yes),
        C::Regenerate { username, all } => auth::regenerate(s, username, all),
        C::AppsTransfer { user, app } => apps::transfer(s, &s.app(&app), &user),
        C::AppsOpen(app) => apps::open(s, &s.app(&app)),
        C::ConfigPull {
            app,
            interactive,
            overwrite,
        } => config::pull(s, &s.app(&app), interactive, overwrite),
        C::ConfigPush { app, path } => config::push(s, &s.app(&app), &path),
        C::CertsList(limit) => certs::list(s, limit.limit),
        C::CertsAdd {
            cert,
            key,
            common_name,
            subject_alt_names,
        } => certs::add(s, &cert, &key, common_name, &subject_alt_names),
        C::CertsRemove { common_name } => certs::remove(s, &common_name),
        C::AppsCreate {
            id,
            no_remote,
            remote,
            buildpack,
        } => apps::create(s, id, no_remote, &remote, buildpack),
        C::AppsList(limit) => apps::list(s, limit.limit),
        C::AppsInfo(app) => apps::info(s, &s.app(&app)),
        C::AppsDestroy { app, confirm } => apps::destroy(s, &app, confirm),
        C::AppsRun { app, command } => apps::run(s, &s.app(&app), &command.join(" ")),
        C::AppsLogs { app, lines, follow } => apps::logs(s, &s.app(&app), lines, follow),
        C::ConfigList { app, oneline } => config::list(s, &s.app(&app), oneline),
        C::ConfigSet { app, values } => config::set(s, &s.app(&app), &values),
        C::ConfigUnset { app, keys } => config::unset(s, &s.app(&app), &keys),
        C::LimitsList(app) => limits::list(s, &s.app(&app)),
        C::LimitsSet {
            app, cpu, values, ..
        } => limits::set(s, &s.app(&app), cpu, &values),
        C::LimitsUnset {
            app, cpu, types, ..
        } => limits::unset(s, &s.app(&app), cpu, &types),
        C::TagsList(app) => tags::list(s, &s.app(&app)),
        C::TagsSet { app, values } => tags::set(s, &s.app(&app), &values),
        C::TagsUnset { app, keys } => tags::unset(s, &s.app(&app), &keys),
        C::ReleasesList { app, limit } => releases::list(s, &s.app(&app), limit.limit),
        C::ReleasesInfo { version, app } => releases::info(s, &s.app(&app), &version),
        C::ReleasesRollback { version, app } => {
            releases::rollback(s, &s.app(&app), version.as_deref())
        }
        C::PsList(app) => ps::list(s, &s.app(&app)),
        C::PsScale { types, app } => ps::scale(s, &s.app(&app), &types),
        C::PsRestart { target, app } => ps::restart(s, &s.app(&app), target.as_deref()),
        C::DomainsList(app) => domains::list(s, &s.app(&app)),
        C::DomainsAdd { domain, app } => domains::add(s, &s.app(&app), &domain),
        C::DomainsRemove { domain, app } => domains::remove(s, &s.app(&app), &domain),
        C::KeysList(limit) => keys::list(s, limit.limit),
        C::KeysAdd { path } => keys::add(s, path.as_deref()),
        C::KeysRemove { id } => keys::remove(s, &id),
        C::PermsList { app, admin } => perms::list(s, &app, admin),
        C::PermsCreate { user, app, admin } => perms::change(s, &app, admin, &user, true),
        C::PermsDelete { user, app, admin } => perms::change(s, &app, admin, &user, false),
        C::BuildsList { app, limit } => builds::list(s, &s.app(&app), limit.limit),
        C::BuildsCreate {
            image,
            app,
            procfile,
        } => builds::create(s, &s.app(&app), &image, procfile.as_deref()),
        C::UsersList(limit) => users::list(s, limit.limit),
        C::GitRemote { app, remote } => git::remote(s, &s.app(&app), &remote),
        C::Register { .. } | C::Login { .. } | C::Logout | C::Version | C::Completions { .. } => {
            Ok(0)
        }
    }
}

/// With `--json`, prints `value` and says so; the caller then prints nothing else.
pub(crate) fn json_output(value: &serde_json::Value) -> bool {
    if !crate::JSON.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
    true
}

/// Runs `f` while a spinner (`...`, `o..`, `.o.`, `..o`) turns on stderr, when it is a
/// terminal; scripts and pipes see nothing of it.
pub(crate) fn with_progress<T>(f: impl FnOnce() -> T) -> T {
    use std::io::{IsTerminal, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    if !std::io::stderr().is_terminal() {
        return f();
    }
    let frames = ["...", "o..", ".o.", "..o"];
    // The first frame at once, so that even an instant answer shows the spinner had started.
    eprint!("{}\x08\x08\x08", frames[0]);
    let _ = std::io::stderr().flush();
    let done = Arc::new(AtomicBool::new(false));
    let spinner = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut i = 1;
            loop {
                std::thread::park_timeout(std::time::Duration::from_millis(250));
                if done.load(Ordering::Relaxed) {
                    break;
                }
                eprint!("{}\x08\x08\x08", frames[i % frames.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
            }
            eprint!("   \x08\x08\x08");
        })
    };
    let result = f();
    done.store(true, Ordering::Relaxed);
    spinner.thread().unpark();
    let _ = spinner.join();
    result
}

/// Reads a line from standard input after `prompt` (for values not given as flags).
pub(crate) fn prompt(prompt: &str) -> Result<String, CliError> {
    use std::io::Write;
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Message(format!("cannot read the answer: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
