//! The router settings of `/deis/router/<name>` (Deis v1 §13.2) that still make sense for a
//! proxy without nginx, parsed once per table. A value that does not parse keeps the default and
//! is logged; it never stops routing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// Settings applied to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Largest request body; `None` is unlimited (`bodySize`, default `1m`, `0` = unlimited).
    pub(crate) body_size: Option<u64>,
    /// How long an app may take to answer (`defaultTimeout`, seconds, default 1300).
    pub(crate) app_timeout: Duration,
    /// How long to wait for a connection to an app container (10 s, no key: the value this
    /// router has always used; Deis's nginx had a fixed 30 s).
    pub(crate) app_connect_timeout: Duration,
    /// `controller/timeout/connect` (default `10s`).
    pub(crate) controller_connect_timeout: Duration,
    /// `controller/timeout/read` (default `20m`).
    pub(crate) controller_timeout: Duration,
    /// Redirect plain HTTP to HTTPS (`enforceHTTPS`, else `hsts/enabled`).
    pub(crate) enforce_https: bool,
    /// The `Strict-Transport-Security` value for HTTPS responses, when `hsts/enabled`.
    pub(crate) hsts: Option<String>,
    /// Who may reach the controller (`controller/whitelist`).
    pub(crate) controller_whitelist: Option<AllowList>,
    /// Deny apps that have no `DEIS_WHITELIST` (`enforceWhitelist`).
    pub(crate) enforce_whitelist: bool,
    /// A query argument whose value pins a client to one backend (`affinityArg`).
    pub(crate) affinity_arg: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the real client (`proxyRealIpCidr`).
    pub(crate) real_ip_from: AllowList,
    /// Log one line per request (`accessLog`, default `on`).
    pub(crate) access_log: bool,
    /// The platform certificate, PEM (`sslCert` / `sslKey`).
    pub(crate) ssl_cert: Option<(String, String)>,
    /// How long to wait for a connection to the builder when relaying `git push`
    /// (`builder/timeout/connect`, milliseconds, default 10000).
    pub(crate) builder_connect_timeout: Duration,
    /// How long a relayed `git push` connection may pass no byte either way before it is closed
    /// (`builder/timeout/tcp`, milliseconds, default 1200000: 20 minutes).
    pub(crate) builder_idle_timeout: Duration,
}

/// How long the router waits for a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// For the TCP connection.
    pub(crate) connect: Duration,
    /// For the response's head, the connection included.
    pub(crate) read: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body_size: Some(1024 * 1024),
            app_timeout: Duration::from_secs(1300),
            app_connect_timeout: Duration::from_secs(10),
            controller_connect_timeout: Duration::from_secs(10),
            controller_timeout: Duration::from_secs(20 * 60),
            enforce_https: false,
            hsts: None,
            controller_whitelist: None,
            enforce_whitelist: false,
            affinity_arg: None,
            real_ip_from: AllowList(vec![IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::new(10, 0, 0, 0),
                8,
            ))]),
            access_log: true,
            ssl_cert: None,
            builder_connect_timeout: Duration::from_secs(10),
            builder_idle_timeout: Duration::from_secs(20 * 60),
        }
    }
}

impl Settings {
    /// The controller's timeouts (`controller/timeout/connect`, `controller/timeout/read`) or
    /// an app's (`defaultTimeout`).
    pub(crate) fn timeouts(&self, controller: bool) -> Timeouts {
        if controller {
            Timeouts {
                connect: self.controller_connect_timeout,
                read: self.controller_timeout,
            }
        } else {
            Timeouts {
                connect: self.app_connect_timeout,
                read: self.app_timeout,
            }
        }
    }

    /// Settings from the router's keys: setting name (`hsts/maxAge`) to value.
    pub(crate) fn parse(values: &BTreeMap<String, String>) -> Settings {
        let mut s = Settings::default();
        let get = |name: &str| values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let warn = |name: &str, value: &str| {
            tracing::warn!(
                setting = name,
                value,
                "Router setting not understood; using the default"
            );
        };
        macro_rules! parsed {
            ($name:literal, $parse:expr, $field:expr) => {
                if let Some(v) = get($name) {
                    match $parse(v) {
                        Some(x) => $field = x,
                        None => warn($name, v),
                    }
                }
            };
        }
        parsed!(
            "bodySize",
            |v| parse_size(v).map(|n| (n > 0).then_some(n)),
            s.body_size
        );
        parsed!("defaultTimeout", parse_duration, s.app_timeout);
        parsed!(
            "controller/timeout/connect",
            parse_duration,
            s.controller_connect_timeout
        );
        parsed!(
            "controller/timeout/read",
            parse_duration,
            s.controller_timeout
        );
        parsed!(
            "builder/timeout/connect",
            parse_millis,
            s.builder_connect_timeout
        );
        parsed!("builder/timeout/tcp", parse_millis, s.builder_idle_timeout);
        parsed!("enforceWhitelist", parse_bool, s.enforce_whitelist);
        parsed!("accessLog", parse_bool, s.access_log);
        parsed!("proxyRealIpCidr", AllowList::parse, s.real_ip_from);
        parsed!(
            "controller/whitelist",
            |v| AllowList::parse(v).map(Some),
            s.controller_whitelist
        );
        s.affinity_arg = get("affinityArg").map(str::to_owned);
        let hsts_enabled = get("hsts/enabled").and_then(parse_bool).unwrap_or(false);
        // Deis: the key's presence decides, whatever else `enforceHTTPS` says.
        s.enforce_https = match values.get("enforceHTTPS") {
            Some(v) => parse_bool(v.trim()).unwrap_or(false),
            None => hsts_enabled,
        };
        if hsts_enabled {
            let max_age = get("hsts/maxAge")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(10_886_400);
            let mut value = format!("max-age={max_age}");
            if get("hsts/includeSubDomains").and_then(parse_bool) == Some(true) {
                value.push_str("; includeSubDomains");
            }
            if get("hsts/preload").and_then(parse_bool) == Some(true) {
                value.push_str("; preload");
            }
            s.hsts = Some(value);
        }
        if let (Some(cert), Some(key)) = (get("sslCert"), get("sslKey")) {
            s.ssl_cert = Some((cert.to_owned(), key.to_owned()));
        }
        s
    }
}

/// An nginx-style size: `1048576`, `512k`, `1m`, `1g`.
pub(crate) fn parse_size(value: &str) -> Option<u64> {
    let value = value.to_ascii_lowercase();
    let (digits, unit) = match value.char_indices().last()? {
        (i, 'k') => (&value[..i], 1024),
        (i, 'm') => (&value[..i], 1024 * 1024),
        (i, 'g') => (&value[..i], 1024 * 1024 * 1024),
        _ => (value.as_str(), 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// An nginx-style duration: `1300` (seconds), `500ms`, `10s`, `20m`, `1h`.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// A timeout of Deis's builder keys: milliseconds (`10000`), or with a unit like
/// [`parse_duration`] (`10s`); never zero.
fn parse_millis(value: &str) -> Option<Duration> {
    let duration = match value.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => parse_duration(value)?,
    };
    (!duration.is_zero()).then_some(duration)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Addresses and networks allowed through (`DEIS_WHITELIST`, `controller/whitelist`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct AllowList(Vec<IpNet>);

impl AllowList {
    /// A comma-separated list of `address_or_cidr[:label]`; `None` if an entry is not one.
    pub(crate) fn parse(value: &str) -> Option<AllowList> {
        let mut nets = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = parse_net(entry).or_else(|| {
                let (address, _label) = entry.rsplit_once(':')?;
                parse_net(address)
            })?;
            nets.push(net);
        }
        Some(AllowList(nets))
    }

    /// Whether `ip` is inside one of the networks.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn parse_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::parse(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn sizes_and_durations_read_like_nginx() {
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_duration("1300"), Some(Duration::from_secs(1300)));
        assert_eq!(parse_duration("20m"), Some(Duration::from_secs(1200)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn defaults_match_deis_and_bad_values_keep_them() {
        let s = settings(&[("bodySize", "huge"), ("defaultTimeout", "never")]);
        assert_eq!(s, Settings::default());
        assert_eq!(s.body_size, Some(1 << 20));
        assert!(!s.enforce_https);
        assert_eq!(settings(&[("bodySize", "0")]).body_size, None);
    }

    #[test]
    fn timeouts_for_the_controller_and_for_apps() {
        let secs = Duration::from_secs;
        let check = |pairs: &[(&str, &str)], controller: bool, connect: Duration, read| {
            let expect = Timeouts { connect, read };
            assert_eq!(settings(pairs).timeouts(controller), expect, "{pairs:?}");
        };
        check(&[], true, secs(10), secs(20 * 60));
        check(&[], false, secs(10), secs(1300));
        let set = [
            ("controller/timeout/connect", "250ms"),
            ("controller/timeout/read", "5m"),
            ("defaultTimeout", "60"),
        ];
        check(&set, true, Duration::from_millis(250), secs(300));
        check(&set, false, secs(10), secs(60));
    }

    #[test]
    fn builder_timeouts_are_milliseconds_as_in_deis() {
        let s = settings(&[]);
        assert_eq!(s.builder_connect_timeout, Duration::from_secs(10));
        assert_eq!(s.builder_idle_timeout, Duration::from_secs(1200));
        let s = settings(&[
            ("builder/timeout/connect", "2500"),
            ("builder/timeout/tcp", "90s"),
        ]);
        assert_eq!(s.builder_connect_timeout, Duration::from_millis(2500));
        assert_eq!(s.builder_idle_timeout, Duration::from_secs(90));
        let s = settings(&[
            ("builder/timeout/connect", "0"),
            ("builder/timeout/tcp", "soon"),
        ]);
        assert_eq!(s.builder_connect_timeout, Duration::from_secs(10));
        assert_eq!(s.builder_idle_timeout, Duration::from_secs(1200));
    }

    #[test]
    fn https_enforcement_follows_hsts_unless_set() {
        let s = settings(&[("hsts/enabled", "true"), ("hsts/includeSubDomains", "true")]);
        assert!(s.enforce_https);
        assert_eq!(
            s.hsts.as_deref(),
            Some("max-age=10886400; includeSubDomains")
        );
        let s = settings(&[("hsts/enabled", "true"), ("enforceHTTPS", "false")]);
        assert!(!s.enforce_https);
        assert!(settings(&[("enforceHTTPS", "true")]).enforce_https);
    }

    #[test]
    fn allow_lists_take_labels_and_networks() {
        let list = AllowList::parse("10.0.0.0/8:office, 192.168.1.7,::1").expect("parses");
        assert!(list.allows("10.2.3.4".parse().expect("ip")));
        assert!(list.allows("192.168.1.7".parse().expect("ip")));
        assert!(list.allows("::ffff:192.168.1.7".parse().expect("ip")));
        assert!(list.allows("::1".parse().expect("ip")));
        assert!(!list.allows("192.168.1.8".parse().expect("ip")));
        assert_eq!(AllowList::parse("10.0.0.0/8, nonsense"), None);
    }
}
