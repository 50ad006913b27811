//! Failed logins, counted per user name and per client address: after too many within a
//! window, further attempts get 429 with `Retry-After` until the window ends, so that no one
//! guesses passwords at the speed of the hardware. Memory is bounded: at most `MAX_ENTRIES`
//! names and addresses are remembered, the oldest forgotten first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per user name within a window.
const PER_USER: u32 = 5;
/// Failed logins allowed per client address within a window (addresses may be shared).
const PER_ADDRESS: u32 = 20;
/// How long failures are remembered, counted from the first.
const WINDOW: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

/// What counts against a login attempt.
#[derive(Debug, Default)]
pub(crate) struct LoginLimits {
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginLimits {
    /// `Err(wait)` when `user` or `address` has failed too often lately.
    pub(crate) fn check(&self, user: &str, address: &str) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let blocked = |key: String, limit: u32| {
            map.get(&key).and_then(|f| {
                let age = now.duration_since(f.since);
                (f.count >= limit && age < WINDOW).then(|| WINDOW - age)
            })
        };
        match blocked(user_key(user), PER_USER)
            .or_else(|| blocked(address_key(address), PER_ADDRESS))
        {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt against both.
    pub(crate) fn failed(&self, user: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for key in [user_key(user), address_key(address)] {
            if !map.contains_key(&key) && map.len() >= MAX_ENTRIES {
                map.retain(|_, f| now.duration_since(f.since) < WINDOW);
                if map.len() >= MAX_ENTRIES
                    && let Some(oldest) = map
                        .iter()
                        .min_by_key(|(_, f)| f.since)
                        .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
            let entry = map.entry(key).or_insert(Failures {
                count: 0,
                since: now,
            });
            if now.duration_since(entry.since) >= WINDOW {
                *entry = Failures {
                    count: 0,
                    since: now,
                };
            }
            entry.count = entry.count.saturating_add(1);
        }
    }

    /// A successful login clears the user's failures (not the address's).
    pub(crate) fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user_key(user));
    }
}

fn user_key(user: &str) -> String {
    format!("user:{}", user.chars().take(64).collect::<String>())
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_held_back_after_five_failures_and_a_success_clears_it() {
        let limits = LoginLimits::default();
        for _ in 0..PER_USER {
            assert!(limits.check("alice", "10.0.0.1").is_ok());
            limits.failed("alice", "10.0.0.1");
        }
        let wait = limits.check("alice", "10.0.0.2").expect_err("held back");
        assert!(wait <= WINDOW && wait > Duration::ZERO);
        assert!(limits.check("bob", "10.0.0.3").is_ok(), "others are not");
        limits.succeeded("alice");
        assert!(limits.check("alice", "10.0.0.2").is_ok());
    }

    #[test]
    fn an_address_is_held_back_after_twenty_failures_whatever_the_names() {
        let limits = LoginLimits::default();
        for i in 0..PER_ADDRESS {
            limits.failed(&format!("user{i}"), "10.0.0.9");
        }
        assert!(limits.check("someone-new", "10.0.0.9").is_err());
        assert!(limits.check("someone-new", "10.0.0.10").is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let limits = LoginLimits::default();
        for i in 0..(MAX_ENTRIES + 500) {
            limits.failed(&format!("u{i}"), "10.0.0.1");
        }
        let len = limits.failures.lock().map(|m| m.len()).unwrap_or(0);
        assert!(len <= MAX_ENTRIES, "{len}");
    }
}
