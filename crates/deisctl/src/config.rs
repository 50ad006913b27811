//! `deisctl config <target> get|set|rm`: settings under `/deis/<target>/` (Deis §17).

use base64::Engine as _;
use clap::Subcommand;
use deis_store::ConfigStore;
use deis_store::keys::{Component, Key};

use crate::Error;

#[derive(Debug, Clone, Subcommand)]
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

/// The key `key` names under `target`'s settings.
fn key(target: &str, key: &str) -> Result<Key, Error> {
    let name = target_name(target);
    let component = name.parse::<Component>().map_err(|_| {
        let targets: Vec<&str> = Component::ALL.iter().map(|c| c.as_str()).collect();
        Error::Message(format!(
            "'{name}' has no settings; targets are {}",
            targets.join(", ")
        ))
    })?;
    Key::setting(component, key.trim_matches('/')).map_err(|e| Error::Message(e.to_string()))
}

/// What to say when the store fails.
pub(crate) fn store_failed(e: deis_store::StoreError) -> Error {
    Error::Message(format!(
        "the config store failed ({e}); is etcd running? check --endpoint or DEIS_ETCD_ENDPOINTS"
    ))
}

/// A setting's value; unset and empty are the same.
pub(crate) async fn value(store: &dyn ConfigStore, key: &Key) -> Result<Option<String>, Error> {
    Ok(store
        .get(&key.path())
        .await
        .map_err(store_failed)?
        .map(|kv| kv.value)
        .filter(|v| !v.is_empty()))
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
    match action {
        Action::Get { keys } => {
            for name in keys {
                let key = key(target, &name)?;
                match store.get(&key.path()).await.map_err(store_failed)? {
                    Some(kv) => println!("{}", kv.value),
                    None => return Err(Error::Message(format!("{key} is not set"))),
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
                parsed.push((self::key(target, key)?, value));
            }
            for (key, value) in parsed {
                store
                    .put(&key.path(), &value, None)
                    .await
                    .map_err(store_failed)?;
                println!("{value}");
            }
        }
        Action::Rm { keys } => {
            for name in keys {
                store
                    .delete(&key(target, &name)?.path())
                    .await
                    .map_err(store_failed)?;
                println!("{name}");
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
        let path = |target, name| {
            key(target, name)
                .map(|k| k.path())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            path("deis-router@1.service", "firewall/enabled"),
            Ok("/deis/router/firewall/enabled".to_owned())
        );
        assert_eq!(
            path("platform", "/domain/"),
            Ok("/deis/platform/domain".to_owned())
        );
        assert_eq!(
            path("deis-registry-proxy.service", "image"),
            Ok("/deis/registry-proxy/image".to_owned())
        );
        assert!(path("nothing", "x").is_err_and(|e| e.contains("'nothing' has no settings")));
        assert!(path("router", "a b").is_err());
        assert_eq!(pair("a=b=c"), Some(("a=b", "c")), "the last = splits");
        assert_eq!(pair("novalue="), None);
        assert!(file_valued("router@2", "sslCert"));
        assert!(!file_valued("controller", "sslCert"));
    }
}
