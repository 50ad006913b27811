//! Running `iptables` and `iptables-restore` (in the network namespace of the calling process,
//! whose tables they change), and reading back the rules they print.

use std::io::Write;
use std::process::{Command, Stdio};

/// A failed `iptables` command.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// It could not be started.
    #[error("iptables cannot run: {0}")]
    Run(#[source] std::io::Error),
    /// It refused the rule.
    #[error("iptables {args}: {stderr}")]
    Failed { args: String, stderr: String },
}

/// Runs `iptables -w args`.
pub(super) fn iptables(args: &[String]) -> Result<(), IptablesError> {
    iptables_output(&args.iter().map(String::as_str).collect::<Vec<_>>()).map(|_| ())
}

/// Runs `iptables -w args`; its standard output.
pub(super) fn iptables_output(args: &[&str]) -> Result<String, IptablesError> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(IptablesError::Run)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(IptablesError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Whether `iptables -C chain rule...` finds the rule (a missing chain counts as a missing
/// rule); an error only when iptables cannot run.
pub(super) fn has_rule(chain: &str, rule: &[String]) -> Result<bool, IptablesError> {
    let out = Command::new("iptables")
        .arg("-w")
        .arg("-C")
        .arg(chain)
        .args(rule)
        .output()
        .map_err(IptablesError::Run)?;
    Ok(out.status.success())
}

/// Applies `script` (the `iptables-restore` format, one table) in one transaction, leaving
/// every chain it does not name as it was: all of it is applied or none.
pub(super) fn restore(script: &str) -> Result<(), IptablesError> {
    let args = "-restore -w --noflush".to_owned();
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(IptablesError::Run)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error shows as the command's failure below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(IptablesError::Run)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(IptablesError::Failed {
            args,
            stderr: format!(
                "{} (rules given: {})",
                String::from_utf8_lossy(&out.stderr).trim(),
                script.lines().collect::<Vec<_>>().join("; ")
            ),
        })
    }
}

/// The rules of `chain` as `iptables -S` prints them (`-A CHAIN ...`) that carry `comment`;
/// none when the chain cannot be listed.
pub(super) fn commented_rules(chain: &str, comment: &str) -> Vec<String> {
    let Ok(listed) = iptables_output(&["-S", chain]) else {
        return Vec::new();
    };
    let quoted = format!("--comment \"{comment}\"");
    listed
        .lines()
        .filter(|line| line.starts_with("-A ") && line.contains(&quoted))
        .map(str::to_owned)
        .collect()
}

/// Splits a rule as `iptables -S` prints it (double quotes around words with spaces).
pub(super) fn split_rule(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rule.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Words joined as `iptables-restore` reads them (a word with a space in double quotes).
pub(super) fn join_rule(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.contains(' ') {
                format!("\"{w}\"")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_as_printed_are_split_back_and_joined_again() {
        let printed = "INPUT -i deis1 -m comment --comment \"deis a b\" -j DEIS-deis1";
        let words = split_rule(printed);
        assert_eq!(
            words,
            [
                "INPUT",
                "-i",
                "deis1",
                "-m",
                "comment",
                "--comment",
                "deis a b",
                "-j",
                "DEIS-deis1"
            ]
        );
        assert_eq!(join_rule(&words), printed);
    }
}
