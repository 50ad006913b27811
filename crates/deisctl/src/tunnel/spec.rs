//! `[user@]host[:port]`: where the tunnel goes, as `DEISCTL_TUNNEL` and `--tunnel` say it.

use std::fmt;
use std::net::Ipv6Addr;

use crate::Error;

/// The user Deis v1 logs in as on CoreOS hosts.
pub(crate) const DEFAULT_USER: &str = "core";

/// The SSH port when the spec names none.
pub(crate) const DEFAULT_PORT: u16 = 22;

const FORM: &str = "expected [user@]host[:port], e.g. core@10.21.1.5 or 10.21.1.5:2222";

/// An SSH destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TunnelSpec {
    pub(crate) user: String,
    /// A name or an address; an IPv6 address without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl TunnelSpec {
    /// Parses `[user@]host[:port]`; the user defaults to `core`, the port to 22. An IPv6 literal
    /// goes in brackets when a port follows (`[fd00::1]:2222`); a bare one (`fd00::1`) is
    /// accepted too.
    pub(crate) fn parse(text: &str) -> Result<TunnelSpec, Error> {
        let text = text.trim();
        let bad = |why: &str| Error::Message(format!("invalid SSH tunnel '{text}': {why}; {FORM}"));
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (user, rest),
            None => (DEFAULT_USER, text),
        };
        if user.is_empty() {
            return Err(bad("the user before '@' is empty"));
        }
        if user
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
        {
            return Err(bad("the user holds a space or ':'"));
        }
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((host, after)) = inner.split_once(']') else {
                return Err(bad("'[' without ']'"));
            };
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(bad("brackets hold an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return Err(bad("only ':port' may follow ']'")),
                },
            };
            (host, port)
        } else if rest.parse::<Ipv6Addr>().is_ok() {
            (rest, None)
        } else if rest.matches(':').count() > 1 {
            return Err(bad(
                "an IPv6 address with a port goes in brackets: [fd00::1]:22",
            ));
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '[' | ']'))
        {
            return Err(bad("the host is not a name or an address"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(bad(&format!("'{port}' is not a port (1-65535)"))),
            },
        };
        Ok(TunnelSpec {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// A spec from its parts.
    pub(crate) fn new(user: &str, host: &str, port: u16) -> TunnelSpec {
        TunnelSpec {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
        }
    }

    /// `host:port`, with an IPv6 address in brackets.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host as known_hosts names it: `host` on port 22, else `[host]:port`.
    pub(crate) fn known_hosts_name(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for TunnelSpec {
    /// `user@host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TunnelSpec {
        TunnelSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(text: &str) -> String {
        match TunnelSpec::parse(text) {
            Ok(spec) => panic!("{text} parsed as {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bare_host_is_core_on_port_22() {
        assert_eq!(parse("10.21.1.5"), TunnelSpec::new("core", "10.21.1.5", 22));
        assert_eq!(
            parse(" deis-1.example.com "),
            TunnelSpec::new("core", "deis-1.example.com", 22)
        );
    }

    #[test]
    fn user_and_port_override_the_defaults() {
        assert_eq!(
            parse("root@10.21.1.5:2222"),
            TunnelSpec::new("root", "10.21.1.5", 2222)
        );
        assert_eq!(parse("host:2200"), TunnelSpec::new("core", "host", 2200));
        assert_eq!(parse("ops@host"), TunnelSpec::new("ops", "host", 22));
        assert_eq!(parse("a@b@host").user, "a@b");
    }

    #[test]
    fn ipv6_literals_are_accepted_with_and_without_brackets() {
        assert_eq!(
            parse("[fd00::1]:2222"),
            TunnelSpec::new("core", "fd00::1", 2222)
        );
        assert_eq!(parse("root@[::1]"), TunnelSpec::new("root", "::1", 22));
        assert_eq!(parse("fd00::1"), TunnelSpec::new("core", "fd00::1", 22));
        let spec = parse("[::1]:2222");
        assert_eq!(spec.address(), "[::1]:2222");
        assert_eq!(spec.known_hosts_name(), "[::1]:2222");
        assert_eq!(spec.to_string(), "core@[::1]:2222");
    }

    #[test]
    fn known_hosts_names_match_what_ssh_keyscan_writes() {
        assert_eq!(parse("h").known_hosts_name(), "h");
        assert_eq!(parse("h:2222").known_hosts_name(), "[h]:2222");
    }

    #[test]
    fn errors_name_the_expected_form() {
        for (text, why) in [
            ("", "empty"),
            ("@host", "user"),
            ("host:", "port"),
            ("host:0", "port"),
            ("host:99999", "port"),
            ("host:ssh", "port"),
            (":22", "host is empty"),
            ("user@", "host is empty"),
            ("[fd00::1", "']'"),
            ("[host]:22", "IPv6"),
            ("[::1]x", "':port'"),
            ("fd00::1:2222x", "brackets"),
            ("a b", "host"),
        ] {
            let e = error(text);
            assert!(e.contains("[user@]host[:port]"), "{text}: {e}");
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
