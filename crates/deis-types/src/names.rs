//! Validated names. Each type can only hold a value that passed its rule, so code that receives
//! one never re-checks it, and store keys built from them can never contain a stray `/`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value that does not follow the rule of the name it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}: {rule}")]
pub struct InvalidName {
    /// What kind of name was expected (`app name`, `container name`, ...).
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The rule it broke, in words for the user.
    pub rule: &'static str,
}

fn invalid(kind: &'static str, value: &str, rule: &'static str) -> InvalidName {
    InvalidName {
        kind,
        value: value.to_owned(),
        rule,
    }
}

/// An application id: `[a-z0-9-]+`, at most 64 characters (Deis v1 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// The rule, worded as the Deis v1 API words it.
    pub const RULE: &'static str = "App IDs can only contain [a-z0-9-].";
    /// The longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AppName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(invalid("app name", s, "1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("app name", s, Self::RULE));
        }
        Ok(AppName(s.to_owned()))
    }
}

/// A process type from a Procfile or a scale request (`web`, `worker`, `cmd`, `run`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProcessType(String);

impl ProcessType {
    /// The rule for process types.
    pub const RULE: &'static str =
        "a lowercase letter, then lowercase letters, digits, '-' or '_', at most 63 characters";

    /// The type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProcessType {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok =
            bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !first_ok || !rest_ok || s.len() > 63 {
            return Err(invalid("process type", s, Self::RULE));
        }
        Ok(ProcessType(s.to_owned()))
    }
}

/// A release number, `v1` being an app's first release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReleaseVersion(pub u32);

impl FromStr for ReleaseVersion {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('v').unwrap_or(s);
        digits
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0 && !digits.starts_with('+'))
            .map(ReleaseVersion)
            .ok_or_else(|| invalid("release version", s, "v followed by a positive number"))
    }
}

/// The name of one app container: `{app}_v{N}.{type}.{num}` (Deis v1 §8.1), which is also its
/// Docker container name and the last segment of its route key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerName {
    /// The app the container belongs to.
    pub app: AppName,
    /// The release it runs.
    pub version: ReleaseVersion,
    /// Its process type.
    pub process_type: ProcessType,
    /// Its number within the type, from 1.
    pub num: u32,
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_v{}.{}.{}",
            self.app, self.version.0, self.process_type, self.num
        )
    }
}

impl FromStr for ContainerName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const RULE: &str = "{app}_v{N}.{type}.{num}";
        let bad = || invalid("container name", s, RULE);
        let (app, rest) = s.split_once('_').ok_or_else(bad)?;
        let mut parts = rest.split('.');
        let (Some(version), Some(process_type), Some(num), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !version.starts_with('v') {
            return Err(bad());
        }
        Ok(ContainerName {
            app: app.parse()?,
            version: version.parse()?,
            process_type: process_type.parse()?,
            num: num
                .parse()
                .ok()
                .filter(|n| *n > 0 && !num.starts_with('+'))
                .ok_or_else(bad)?,
        })
    }
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $t {
            type Error = InvalidName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
string_newtype_impls!(AppName, ProcessType);

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_app(input: &str, ok: bool) {
        assert_eq!(input.parse::<AppName>().is_ok(), ok, "{input:?}");
    }

    #[test]
    fn app_names() {
        check_app("my-app-2", true);
        check_app("a", true);
        check_app(&"a".repeat(64), true);
        check_app(&"a".repeat(65), false);
        check_app("", false);
        check_app("My-App", false);
        check_app("my_app", false);
        check_app("../etc", false);
        check_app("app/x", false);
    }

    #[test]
    fn container_names_round_trip() {
        for s in ["go_v2.web.1", "my-app_v10.worker_2.13", "a_v1.run.1"] {
            let parsed: ContainerName = s.parse().expect("valid name");
            assert_eq!(parsed.to_string(), s);
        }
        let c: ContainerName = "go_v2.web.1".parse().expect("valid");
        assert_eq!(c.app.as_str(), "go");
        assert_eq!(c.version, ReleaseVersion(2));
        assert_eq!(c.process_type.as_str(), "web");
        assert_eq!(c.num, 1);
    }

    #[test]
    fn container_names_rejected() {
        for s in [
            "go.web.1",
            "go_2.web.1",
            "go_v0.web.1",
            "go_v2.web",
            "go_v2.web.0",
            "go_v2.web.1.2",
            "go_v2.Web.1",
            "go_v2.web.+1",
            "Go_v2.web.1",
        ] {
            assert!(
                s.parse::<ContainerName>().is_err(),
                "{s:?} should be rejected"
            );
        }
    }

    #[test]
    fn release_versions() {
        assert_eq!("v3".parse::<ReleaseVersion>(), Ok(ReleaseVersion(3)));
        assert_eq!("3".parse::<ReleaseVersion>(), Ok(ReleaseVersion(3)));
        assert!("v0".parse::<ReleaseVersion>().is_err());
        assert!("v+3".parse::<ReleaseVersion>().is_err());
        assert_eq!(ReleaseVersion(7).to_string(), "v7");
    }
}
