//! `list` (fleet's columns `UNIT MACHINE LOAD ACTIVE SUB`), `status` (`systemctl status -l`)
//! and `journal` (`journalctl -u`).

use std::time::Duration;

use super::host::{Host, quote};
use super::{SystemdPlatform, state, unit_name};
use crate::Error;
use crate::platform::component::Target;

/// How often `journal --follow` asks for new lines through the tunnel.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// What `journalctl --show-cursor` prints before the cursor.
const CURSOR: &str = "-- cursor: ";

impl SystemdPlatform {
    /// The host's `COREOS_PRIVATE_IPV4`, else the name deisctl reaches it by.
    pub(super) async fn address(&self) -> Result<String, Error> {
        let out = self
            .host
            .run("[ -r /etc/environment ] && . /etc/environment; echo \"${COREOS_PRIVATE_IPV4:-}\"")
            .await?;
        let ip = out.stdout.trim();
        if !ip.is_empty() {
            return Ok(ip.to_owned());
        }
        Ok(match &self.host {
            Host::Local => "127.0.0.1".to_owned(),
            Host::Ssh(tunnel) => tunnel.spec().host.clone(),
        })
    }

    /// fleet's MACHINE column: `<machine id's first 8>.../<address>`.
    async fn machine(&self) -> Result<String, Error> {
        let id = self.host.run("cat /etc/machine-id").await?.stdout;
        let short: String = id.trim().chars().take(8).collect();
        Ok(format!("{short}.../{}", self.address().await?))
    }

    pub(crate) async fn list(&self) -> Result<(), Error> {
        let mut names: Vec<String> = self.installed().await?.into_iter().map(unit_name).collect();
        names.sort();
        let states = state::of(&self.host, &names).await?;
        let machine = if names.is_empty() {
            String::new()
        } else {
            self.machine().await?
        };
        let width = names.iter().map(String::len).max().unwrap_or(0).max(4);
        let machine_width = machine.len().max(7);
        println!(
            "{:width$} {:machine_width$} {:7} {:9} SUB",
            "UNIT", "MACHINE", "LOAD", "ACTIVE"
        );
        for state in states {
            println!(
                "{:width$} {:machine_width$} {:7} {:9} {}",
                state.id, machine, state.load, state.active, state.sub
            );
        }
        Ok(())
    }

    pub(crate) async fn status(&self, targets: &[Target]) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        let names: Vec<String> = units.into_iter().map(|u| quote(&unit_name(u))).collect();
        let ran = self
            .host
            .run(&format!(
                "systemctl status -l --no-pager {}",
                names.join(" ")
            ))
            .await?;
        print!("{}", ran.stdout);
        // 3: some unit is not running, which status shows; anything else is a failure.
        if !matches!(ran.status, 0 | 3) {
            return Err(Error::Message(format!(
                "systemctl status on {} failed: {}",
                self.host.name(),
                ran.last_words()
            )));
        }
        Ok(())
    }

    pub(crate) async fn journal(
        &self,
        targets: &[Target],
        lines: usize,
        follow: bool,
    ) -> Result<(), Error> {
        let units = self.installed_targets(targets).await?;
        let selection: Vec<String> = units
            .into_iter()
            .map(|u| format!("-u {}", quote(&unit_name(u))))
            .collect();
        let selection = selection.join(" ");
        if follow && matches!(self.host, Host::Local) {
            return follow_here(&selection, lines).await;
        }
        let out = self
            .host
            .ok(
                &format!("journalctl --no-pager -q --show-cursor -n {lines} {selection}"),
                "journalctl",
            )
            .await?;
        let mut cursor = print_entries(&out, None);
        if !follow {
            return Ok(());
        }
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let after = match &cursor {
                Some(c) => format!("--after-cursor={}", quote(c)),
                None => String::new(),
            };
            let out = self
                .host
                .ok(
                    &format!("journalctl --no-pager -q --show-cursor {after} {selection}"),
                    "journalctl",
                )
                .await?;
            cursor = print_entries(&out, cursor);
        }
    }
}

/// Prints journal lines; the cursor after them (else `cursor`).
fn print_entries(text: &str, cursor: Option<String>) -> Option<String> {
    let mut cursor = cursor;
    for line in text.lines() {
        match line.strip_prefix(CURSOR) {
            Some(c) => cursor = Some(c.trim().to_owned()),
            None => println!("{line}"),
        }
    }
    cursor
}

/// `journalctl -f` on this host, its output deisctl's.
async fn follow_here(selection: &str, lines: usize) -> Result<(), Error> {
    let command = format!("journalctl --no-pager -n {lines} -f {selection}");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .await
        .map_err(|e| Error::Message(format!("cannot run `{command}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Message(format!("`{command}` failed ({status})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_kept_and_not_printed() {
        assert_eq!(
            print_entries("a line\n-- cursor: s=1;i=2\n", None).as_deref(),
            Some("s=1;i=2")
        );
        assert_eq!(
            print_entries("", Some("old".to_owned())).as_deref(),
            Some("old")
        );
    }
}
