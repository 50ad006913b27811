//! The unit files under systemd-units/ start every component as a container and give it more
//! time to stop than its drain period.

use std::collections::BTreeMap;

/// Sections of a unit file and their `key=value` lines (continuation lines joined).
fn parse_unit(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            sections.entry(current.clone()).or_default();
        } else if let Some((k, v)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .push((k.to_owned(), v.to_owned()));
        } else {
            panic!("not a unit file line: {line:?}");
        }
    }
    sections
}

#[test]
fn every_component_has_a_unit_that_runs_its_container() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd-units");
    for (unit, container) in [
        ("deis-controller.service", "deis-controller"),
        ("deis-builder.service", "deis-builder"),
        ("deis-logger.service", "deis-logger"),
        ("deis-logspout.service", "deis-logspout"),
        ("deis-database.service", "deis-database"),
        ("deis-registry-proxy.service", "deis-registry-proxy"),
        ("deis-registry.service", "deis-registry"),
        ("deis-router@.service", "deis-router"),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{unit}"))
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
        let sections = parse_unit(&text);
        let service = &sections["Service"];
        let get = |key: &str| {
            service
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{unit} has no {key}"))
        };
        assert!(
            get("ExecStart").contains(&format!("docker run --name {container} ")),
            "{unit}"
        );
        let stop = get("ExecStop");
        assert!(
            stop.contains(&format!("docker stop --time 15 {container}")),
            "{unit}: {stop}"
        );
        assert!(
            15 > deis_runtime_default_drain(),
            "docker stop must wait longer than the drain period"
        );
        assert_eq!(get("Restart"), "on-failure", "{unit}");
        assert!(
            sections.contains_key("X-Fleet"),
            "{unit} has fleet placement"
        );
    }
}

fn deis_runtime_default_drain() -> u64 {
    deis_platform::Config::default().controller.drain.as_secs()
}
