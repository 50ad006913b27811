//! Units' states as `systemctl show` tells them.

use super::host::{Host, quote};
use crate::Error;

/// The properties deisctl reads.
const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,Result";

/// One unit's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct UnitState {
    pub(super) id: String,
    /// `loaded`, `not-found`, ...
    pub(super) load: String,
    /// `active`, `inactive`, `activating`, `failed`, ...
    pub(super) active: String,
    /// `running`, `dead`, `auto-restart`, `start-pre`, ...
    pub(super) sub: String,
    /// `success`, `exit-code`, `signal`, `timeout`, ...
    pub(super) result: String,
}

impl UnitState {
    /// `active/running`, as Deis printed it.
    pub(super) fn label(&self) -> String {
        format!("{}/{}", self.active, self.sub)
    }

    pub(super) fn running(&self) -> bool {
        self.active == "active" && self.sub == "running"
    }

    /// Whether its process ended and it will not come up by itself: failed, or waiting to be
    /// restarted after a failure.
    pub(super) fn failed(&self) -> bool {
        self.active == "failed" || self.sub == "auto-restart"
    }

    pub(super) fn stopped(&self) -> bool {
        matches!(self.active.as_str(), "inactive" | "failed")
    }
}

/// Parses `systemctl show` output: one block of `Key=value` lines per unit, blank lines
/// between.
fn parse(text: &str) -> Vec<UnitState> {
    let mut states = Vec::new();
    for block in text.split("\n\n") {
        let mut state = UnitState::default();
        for line in block.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "Id" => state.id = value,
                "LoadState" => state.load = value,
                "ActiveState" => state.active = value,
                "SubState" => state.sub = value,
                "Result" => state.result = value,
                _ => {}
            }
        }
        if !state.id.is_empty() {
            states.push(state);
        }
    }
    states
}

/// The states of `units` (unit names), in their order.
pub(super) async fn of(host: &Host, units: &[String]) -> Result<Vec<UnitState>, Error> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = units.iter().map(|u| quote(u)).collect();
    let out = host
        .ok(
            &format!(
                "systemctl show --no-pager --property={PROPERTIES} {}",
                names.join(" ")
            ),
            "systemctl show",
        )
        .await?;
    let states = parse(&out);
    Ok(units
        .iter()
        .map(|name| {
            states
                .iter()
                .find(|s| &s.id == name)
                .cloned()
                .unwrap_or_else(|| UnitState {
                    id: name.clone(),
                    load: "not-found".to_owned(),
                    active: "inactive".to_owned(),
                    sub: "dead".to_owned(),
                    result: String::new(),
                })
        })
        .collect())
}

/// One unit's state.
pub(super) async fn one(host: &Host, unit: &str) -> Result<UnitState, Error> {
    let mut states = of(host, &[unit.to_owned()]).await?;
    Ok(states.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output_is_one_block_per_unit() {
        let text = "Result=success\nId=deis-logger.service\nLoadState=loaded\n\
                    ActiveState=active\nSubState=running\n\n\
                    Id=deis-router@1.service\nLoadState=loaded\nActiveState=activating\n\
                    SubState=auto-restart\nResult=exit-code\n";
        let states = parse(text);
        assert_eq!(states.len(), 2);
        assert!(states[0].running());
        assert_eq!(states[0].label(), "active/running");
        assert_eq!(states[1].id, "deis-router@1.service");
        assert!(states[1].failed());
        assert!(!states[1].stopped());
    }
}
