//! Process types: a `Procfile` (`type: command` lines, the subset of YAML Heroku documents) and
//! a buildpack's `bin/release` output (`default_process_types:` followed by indented pairs).

use std::collections::HashMap;

/// The process types of a Procfile; lines that are not `type: command` are ignored.
pub(crate) fn parse_procfile(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(pair)
        .collect()
}

/// The `default_process_types` of a buildpack's release YAML.
pub(crate) fn release_process_types(text: &str) -> HashMap<String, String> {
    let mut types = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('\t') {
            inside = line.trim_end() == "default_process_types:";
            continue;
        }
        if inside && let Some((k, v)) = pair(line) {
            types.insert(k, v);
        }
    }
    types
}

fn pair(line: &str) -> Option<(String, String)> {
    let (name, command) = line.trim().split_once(':')?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let command = command.trim();
    let command = command
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .or_else(|| {
            command
                .strip_prefix('\'')
                .and_then(|c| c.strip_suffix('\''))
        })
        .unwrap_or(command);
    (valid && !command.is_empty()).then(|| (name.to_owned(), command.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfile_lines() {
        let p = parse_procfile(
            "# comment\nweb: bin/server --port $PORT\nworker:  rake jobs:work\n\nnonsense\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p["web"], "bin/server --port $PORT");
        assert_eq!(p["worker"], "rake jobs:work");
    }

    #[test]
    fn release_yaml_default_types() {
        let yaml = "---\naddons: []\nconfig_vars:\n  LANG: en\ndefault_process_types:\n  web: \"httpd -f -p $PORT\"\n  console: sh\n";
        let t = release_process_types(yaml);
        assert_eq!(t.len(), 2);
        assert_eq!(t["web"], "httpd -f -p $PORT");
        assert!(release_process_types("config_vars:\n  web: x\n").is_empty());
    }
}
