//! `list`, `status` and `journal`: what the platform's containers are doing.

use std::io::Write;

use futures_util::StreamExt;

use super::Platform;
use super::component::{Target, Unit};
use super::state::UnitState;
use crate::Error;

impl Platform {
    /// `list`: one row per unit, Deis's columns plus health and restarts.
    pub(crate) async fn list(&self) -> Result<(), Error> {
        let units = self.engine.units().await?;
        let machine = self.engine.machine().await;
        let rows: Vec<[String; 7]> = units
            .iter()
            .map(|(unit, c)| {
                let s = UnitState::of(c);
                [
                    unit.unit_name(&self.prefix),
                    machine.clone(),
                    "loaded".to_owned(),
                    s.active.to_owned(),
                    s.sub.to_owned(),
                    s.health.to_owned(),
                    s.restarts.to_string(),
                ]
            })
            .collect();
        print_table(
            [
                "UNIT", "MACHINE", "LOAD", "ACTIVE", "SUB", "HEALTH", "RESTARTS",
            ],
            &rows,
        );
        Ok(())
    }

    async fn matching(&self, targets: &[Target]) -> Result<Vec<(Unit, UnitState, String)>, Error> {
        let units = self.engine.units().await?;
        let mut found = Vec::new();
        for target in targets {
            let before = found.len();
            for (unit, c) in &units {
                if target.covers(*unit) {
                    let image = c
                        .config
                        .as_ref()
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default();
                    found.push((*unit, UnitState::of(c), image));
                }
            }
            if found.len() == before {
                return Err(Error::Message(format!(
                    "{target} is not installed; see deisctl list"
                )));
            }
        }
        Ok(found)
    }

    /// `status <target>...`: a block per unit, in the manner of `systemctl status`.
    pub(crate) async fn status(&self, targets: &[Target]) -> Result<(), Error> {
        for (unit, s, image) in self.matching(targets).await? {
            println!(
                "● {} - Deis {}",
                unit.unit_name(&self.prefix),
                unit.component.name()
            );
            println!(
                "   Loaded: loaded (container {}, image {image})",
                unit.container_name(&self.prefix)
            );
            match &s.started_at {
                Some(since) => println!("   Active: {} ({}) since {since}", s.active, s.sub),
                None => println!(
                    "   Active: {} ({}), exit code {}",
                    s.active, s.sub, s.exit_code
                ),
            }
            println!("   Health: {}", s.health);
            if let Some(check) = &s.last_check {
                println!(
                    "   Last check: {}",
                    check.lines().next().unwrap_or_default()
                );
            }
            println!("   Restarts: {}", s.restarts);
            if s.pid > 0 {
                println!(" Main PID: {}", s.pid);
            }
            println!();
        }
        Ok(())
    }

    /// `journal <target>...`: the last `lines` of each unit's output, then new lines if
    /// `follow` (until interrupted).
    pub(crate) async fn journal(
        &self,
        targets: &[Target],
        lines: usize,
        follow: bool,
    ) -> Result<(), Error> {
        let units = self.matching(targets).await?;
        let many = units.len() > 1;
        for (unit, _, _) in units {
            if many {
                println!("-- {} --", unit.unit_name(&self.prefix));
            }
            let mut stream = Box::pin(self.engine.logs(
                &unit.container_name(&self.prefix),
                lines,
                follow && !many,
            ));
            let mut out = std::io::stdout();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                    return Ok(()); // the reader went away
                }
            }
        }
        Ok(())
    }
}

/// Prints `rows` under `header`, in columns as wide as their widest cell.
pub(crate) fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let header = header.map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
