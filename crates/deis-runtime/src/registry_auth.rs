//! Credentials of the platform's registry (the registry proxy in front of it), made here and
//! checked here, so the builder, the scheduler, the controller and the proxy agree on them.
//!
//! Two secrets live in the config store, created by whichever component asks first:
//! `/deis/registry/pushSecret` and `/deis/registry/pullSecret`.
//!
//! - The builder's credential, `deis-builder:<pushSecret>`, may push, delete and pull any
//!   repository, and list the catalog.
//! - An app's credential, `<app>:<hex HMAC-SHA256(pullSecret, app)>`, may pull the repository
//!   named exactly `<app>`, nothing else.
//!
//! They travel as HTTP Basic authentication; [`Credential::x_registry_auth`] is the form the
//! Docker engine takes for pushes and pulls.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use deis_store::ConfigStore;
use deis_store::keys::Key;
use deis_types::AppName;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{SecretError, shared_secret};

/// The user name of the builder's credential.
pub const REGISTRY_BUILDER_USER: &str = "deis-builder";

/// The realm the registry proxy names in `WWW-Authenticate: Basic realm="deis-registry"`.
pub const REGISTRY_REALM: &str = "deis-registry";

/// A user name and password for the registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    username: String,
    password: String,
}

impl Credential {
    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The value of an `Authorization` header: `Basic <base64 of user:password>`.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// What the Docker engine's API takes in `X-Registry-Auth` (bollard's `DockerCredentials`):
    /// base64url of `{"username","password","serveraddress"}`.
    pub fn x_registry_auth(&self, serveraddress: &str) -> String {
        let json = serde_json::json!({
            "username": self.username,
            "password": self.password,
            "serveraddress": serveraddress,
        });
        URL_SAFE.encode(json.to_string())
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The builder's credential (push, delete, pull anything).
pub async fn push_credential(store: &dyn ConfigStore) -> Result<Credential, SecretError> {
    Ok(RegistrySecrets::load(store).await?.push_credential())
}

/// The credential that pulls `app`'s repository and nothing else.
pub async fn pull_credential(
    store: &dyn ConfigStore,
    app: &AppName,
) -> Result<Credential, SecretError> {
    Ok(RegistrySecrets::load(store).await?.pull_credential(app))
}

/// Who a credential the registry proxy checked belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryPrincipal {
    /// The builder (and the controller and scheduler acting for the platform).
    Builder,
    /// One app: it pulls its own repository.
    App(AppName),
}

impl RegistryPrincipal {
    /// Whether it may pull `repository`.
    pub fn may_pull(&self, repository: &str) -> bool {
        match self {
            RegistryPrincipal::Builder => true,
            RegistryPrincipal::App(app) => app.as_str() == repository,
        }
    }

    /// Whether it may push to, or delete from, `repository`.
    pub fn may_push(&self, _repository: &str) -> bool {
        matches!(self, RegistryPrincipal::Builder)
    }

    /// Whether it may list every repository.
    pub fn may_list_catalog(&self) -> bool {
        matches!(self, RegistryPrincipal::Builder)
    }
}

/// The two registry secrets: what makes credentials and what checks them.
#[derive(Clone)]
pub struct RegistrySecrets {
    push: String,
    pull: String,
}

impl std::fmt::Debug for RegistrySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrySecrets(..)")
    }
}

impl RegistrySecrets {
    /// Reads both secrets from the store, creating the missing ones.
    pub async fn load(store: &dyn ConfigStore) -> Result<RegistrySecrets, SecretError> {
        Ok(RegistrySecrets {
            push: shared_secret(store, &Key::registry_push_secret()).await?,
            pull: shared_secret(store, &Key::registry_pull_secret()).await?,
        })
    }

    /// The builder's credential.
    pub fn push_credential(&self) -> Credential {
        Credential {
            username: REGISTRY_BUILDER_USER.to_owned(),
            password: self.push.clone(),
        }
    }

    /// `app`'s pull credential.
    pub fn pull_credential(&self, app: &AppName) -> Credential {
        Credential {
            username: app.as_str().to_owned(),
            password: self.app_password(app.as_str()),
        }
    }

    fn app_password(&self, app: &str) -> String {
        hex::encode(hmac_sha256(self.pull.as_bytes(), app.as_bytes()))
    }

    /// Whose credential an `Authorization` header value presents, if it is a valid one
    /// (passwords are compared in constant time).
    pub fn verify(&self, authorization: &str) -> Option<RegistryPrincipal> {
        let (username, password) = parse_basic(authorization)?;
        let same = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
        if username == REGISTRY_BUILDER_USER && same(&password, &self.push) {
            return Some(RegistryPrincipal::Builder);
        }
        let app: AppName = username.parse().ok()?;
        same(&password, &self.app_password(app.as_str())).then_some(RegistryPrincipal::App(app))
    }
}

/// `Basic <base64 of user:password>` → (user, password); `None` for anything else.
fn parse_basic(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 1024 {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use deis_store::MemoryStore;

    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        for (key, data, expect) in [
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ] {
            assert_eq!(hex::encode(hmac_sha256(&key, &data)), expect);
        }
    }

    fn secrets() -> RegistrySecrets {
        RegistrySecrets {
            push: "push".to_owned(),
            pull: "pull".to_owned(),
        }
    }

    fn app(name: &str) -> AppName {
        name.parse().expect("app name")
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn verifies_exactly_the_credentials_it_makes() {
        let s = secrets();
        let go = s.pull_credential(&app("go"));
        for (header, expect) in [
            (
                s.push_credential().basic_header(),
                Some(RegistryPrincipal::Builder),
            ),
            (go.basic_header(), Some(RegistryPrincipal::App(app("go")))),
            (basic("deis-builder", "pull"), None),
            (
                basic("go", go.password()),
                Some(RegistryPrincipal::App(app("go"))),
            ),
            (basic("python", go.password()), None),
            (basic("go/x", go.password()), None),
            (basic("go", ""), None),
            (format!("Bearer {}", go.password()), None),
            ("Basic !!!".to_owned(), None),
            (String::new(), None),
        ] {
            assert_eq!(s.verify(&header), expect, "{header}");
        }
    }

    #[test]
    fn an_app_pulls_its_own_repository_only() {
        let go = RegistryPrincipal::App(app("go"));
        for (repository, pull) in [("go", true), ("python", false), ("x/go", false)] {
            assert_eq!(go.may_pull(repository), pull, "{repository}");
            assert!(RegistryPrincipal::Builder.may_pull(repository));
        }
        assert!(!go.may_push("go"));
        assert!(RegistryPrincipal::Builder.may_push("go"));
        assert!(!go.may_list_catalog());
    }

    #[test]
    fn x_registry_auth_is_base64url_json() {
        let credential = secrets().push_credential();
        let decoded = URL_SAFE
            .decode(credential.x_registry_auth("127.0.0.1:5000"))
            .expect("base64url");
        let json: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(json["username"], "deis-builder");
        assert_eq!(json["password"], "push");
        assert_eq!(json["serveraddress"], "127.0.0.1:5000");
        assert!(!format!("{credential:?}").contains("push\""));
    }

    #[tokio::test]
    async fn credentials_come_from_secrets_made_on_first_use() {
        let store = MemoryStore::new();
        let push = push_credential(&store).await.expect("push credential");
        let again = push_credential(&store).await.expect("push credential");
        assert_eq!(push, again, "the secret is made once");
        let pull = pull_credential(&store, &app("go")).await.expect("pull");
        let secrets = RegistrySecrets::load(&store).await.expect("secrets");
        assert_eq!(
            secrets.verify(&pull.basic_header()),
            Some(RegistryPrincipal::App(app("go")))
        );
        assert_eq!(
            secrets.verify(&push.basic_header()),
            Some(RegistryPrincipal::Builder)
        );
        for key in [Key::registry_push_secret(), Key::registry_pull_secret()] {
            let kv = store.get(&key.path()).await.expect("get");
            assert!(kv.is_some_and(|kv| kv.value.len() == 64), "{key}");
        }
    }
}
