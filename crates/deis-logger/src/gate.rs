//! What the logger lets in. Lines are stored only for apps that exist (`/deis/services/<app>`
//! in the config store, and `deis-unparsed`), so names made up by a sender allocate nothing.
//! For syslog (which anyone on an allowed network may send) the set is read again when a line
//! names an app it does not hold, at most once a second; the platform's own shippers (which
//! present the secret) name only apps they saw, so a name they send that the set lacks is looked
//! up at once (an app created a moment ago loses no line).
//! Syslog is taken only from allowed source addresses (by default this host's loopback: the
//! platform's own senders), never from app containers. What is kept out is counted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deis_store::ConfigStore;
use deis_store::keys::{Key, prefix};

use crate::entry::{Entry, UNPARSED};
use crate::metrics::Metrics;

/// How often the set may be read again on a miss.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The apps lines may be stored for.
pub(crate) struct KnownApps {
    store: Arc<dyn ConfigStore>,
    names: Mutex<HashSet<String>>,
    /// When the set was last read; held while reading, so one reader at a time.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

impl KnownApps {
    pub(crate) fn new(store: Arc<dyn ConfigStore>) -> KnownApps {
        KnownApps {
            store,
            names: Mutex::default(),
            refreshed: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether `app` exists.
    pub(crate) async fn contains(&self, app: &str) -> bool {
        if app == UNPARSED || self.holds(app) {
            return true;
        }
        let mut refreshed = self.refreshed.lock().await;
        if refreshed.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
            return self.holds(app);
        }
        match self.store.list(prefix::SERVICES).await {
            Ok(listing) => {
                let names: HashSet<String> = listing
                    .kvs
                    .iter()
                    .filter_map(|kv| match Key::parse(&kv.key) {
                        Ok(Key::App(app)) => Some(app.to_string()),
                        _ => None,
                    })
                    .collect();
                *self.names.lock().unwrap_or_else(PoisonError::into_inner) = names;
                *refreshed = Some(Instant::now());
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot list the apps; lines for apps not seen yet wait for the store")
            }
        }
        self.holds(app)
    }

    /// Whether `app` exists, asking the store at once when the set lacks it (for senders that
    /// cannot flood: the platform's own).
    pub(crate) async fn contains_now(&self, app: &str) -> bool {
        if app == UNPARSED || self.holds(app) {
            return true;
        }
        let Ok(name) = app.parse() else {
            return false;
        };
        match self.store.get(&Key::App(name).path()).await {
            Ok(Some(_)) => {
                self.names
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(app.to_owned());
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot look the app up; falling back to the last listing");
                self.contains(app).await
            }
        }
    }

    fn holds(&self, app: &str) -> bool {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(app)
    }
}

/// The checks on everything that arrives.
pub(crate) struct Gate {
    pub(crate) apps: KnownApps,
    pub(crate) metrics: Arc<Metrics>,
    /// Where syslog may come from.
    pub(crate) syslog_from: Vec<ipnet::IpNet>,
}

impl Gate {
    /// Whether a syslog sender at `ip` may send; a refusal is counted.
    pub(crate) fn syslog_allowed(&self, ip: std::net::IpAddr, lines: u64) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        let allowed = self.syslog_from.iter().any(|net| net.contains(&ip));
        if !allowed {
            self.metrics.refused("source not allowed", lines);
        }
        allowed
    }

    /// The entries whose app exists; the others are counted and let go. `trusted` senders (the
    /// platform's shippers) get each app they name looked up at once.
    pub(crate) async fn known(&self, entries: Vec<Entry>, trusted: bool) -> Vec<Entry> {
        let mut last: Option<(String, bool)> = None;
        let mut kept = Vec::with_capacity(entries.len());
        let mut refused = 0u64;
        for entry in entries {
            let known = match &last {
                Some((app, known)) if *app == entry.app => *known,
                _ => {
                    let known = if trusted {
                        self.apps.contains_now(&entry.app).await
                    } else {
                        self.apps.contains(&entry.app).await
                    };
                    last = Some((entry.app.clone(), known));
                    known
                }
            };
            if known {
                kept.push(entry);
            } else {
                refused += 1;
            }
        }
        if refused > 0 {
            self.metrics.refused("unknown app", refused);
        }
        kept
    }
}
