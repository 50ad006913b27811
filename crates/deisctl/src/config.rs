//! `deisctl config <target> get|set|rm`: settings under `/deis/<target>/` (Deis §17).

use base64::Engine as _;
use clap::Subcommand;
use deis_store::ConfigStore;

use crate::Error;

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// Prints values, one per line.
    Get { keys: Vec<String> },
    /// Sets `key=value` pairs (`sslCert`, `sslKey`, `sslDhparam` and `sshPrivateKey` take a
    /// file's path and store its contents).
    Set { pairs: Vec<String> },
    /// Deletes keys.
    Rm { keys: Vec<String> },
}

/// `deis-router@1.service` -> `router`.
fn target_name(target: &str) -> String {
    let t = target.strip_prefix("deis-").unwrap_or(target);
    let t = t.strip_suffix(".service").unwrap_or(t);
    t.split('@').next().unwrap_or(t).to_owned()
}

fn path(target: &str, key: &str) -> String {
    format!("/deis/{}/{}", target_name(target), key.trim_matches('/'))
}

/// `key=value`, split at the last `=` as Deis's deisctl did.
fn pair(arg: &str) -> Option<(&str, &str)> {
    let (key, value) = arg.rsplit_once('=')?;
    (!key.is_empty() && !value.is_empty()).then_some((key, value))
}

fn file_valued(target: &str, key: &str) -> bool {
    matches!(
        (target_name(target).as_str(), key),
        ("router", "sslCert" | "sslKey" | "sslDhparam") | ("platform", "sshPrivateKey")
    )
}

fn expand(path: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let path = path.replace("$HOME", &home);
    match path.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None => path,
    }
}

pub(crate) async fn run(
    store: &dyn ConfigStore,
    target: &str,
    action: Action,
) -> Result<(), Error> {
    let failed = |e: deis_store::StoreError| {
        Error::Message(format!(
            "the config store failed ({e}); is etcd running? check --endpoint or DEIS_ETCD_ENDPOINTS"
        ))
    };
    match action {
        Action::Get { keys } => {
            for key in keys {
                let p = path(target, &key);
                match store.get(&p).await.map_err(failed)? {
                    Some(kv) => println!("{}", kv.value),
                    None => return Err(Error::Message(format!("{p} is not set"))),
                }
            }
        }
        Action::Set { pairs } => {
            let mut parsed = Vec::new();
            for arg in &pairs {
                let Some((key, value)) = pair(arg) else {
                    return Err(Error::Message(format!(
                        "'{arg}' does not match the pattern 'key=var', ex: foo=bar"
                    )));
                };
                let value = if file_valued(target, key) {
                    let file = expand(value);
                    let contents = std::fs::read(&file).map_err(|e| {
                        Error::Message(format!("cannot read {file} for {key}: {e}"))
                    })?;
                    if key == "sshPrivateKey" {
                        base64::engine::general_purpose::STANDARD.encode(contents)
                    } else {
                        String::from_utf8(contents).map_err(|_| {
                            Error::Message(format!("{file} is not text (PEM expected)"))
                        })?
                    }
                } else {
                    value.to_owned()
                };
                parsed.push((path(target, key), value));
            }
            for (p, value) in parsed {
                store.put(&p, &value, None).await.map_err(failed)?;
                println!("{value}");
            }
        }
        Action::Rm { keys } => {
            for key in keys {
                store.delete(&path(target, &key)).await.map_err(failed)?;
                println!("{key}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keys_and_pairs_as_deisctl_reads_them() {
        assert_eq!(
            path("deis-router@1.service", "firewall/enabled"),
            "/deis/router/firewall/enabled"
        );
        assert_eq!(path("platform", "domain"), "/deis/platform/domain");
        assert_eq!(pair("a=b=c"), Some(("a=b", "c")), "the last = splits");
        assert_eq!(pair("novalue="), None);
        assert!(file_valued("router@2", "sslCert"));
        assert!(!file_valued("controller", "sslCert"));
    }
}
