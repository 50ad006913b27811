//! Login attempts, counted per user name and per client address before the password is
//! checked (a success gives its attempt back): after too many within a window, further
//! attempts get 429 with `Retry-After` until the window ends, so that no one guesses passwords
//! at the speed of the hardware, not even with simultaneous requests. Memory is bounded: at most
//! `MAX_ENTRIES` names and addresses are remembered, the oldest that holds nothing back
//! forgotten first.

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
    /// Counts a login attempt against `user` and `address` before the password is checked
    /// (so that simultaneous guesses count too): `Err(wait)` when either has had too many
    /// lately. A successful login gives its attempt back ([`LoginLimits::succeeded`]).
    pub(crate) fn attempt(&self, user: &str, address: &str) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let keys = [
            (user_key(user), PER_USER),
            (address_key(address), PER_ADDRESS),
        ];
        for (key, limit) in &keys {
            if let Some(f) = map.get(key) {
                let age = now.duration_since(f.since);
                if f.count >= *limit && age < WINDOW {
                    return Err(WINDOW - age);
                }
            }
        }
        let missing = keys.iter().filter(|(k, _)| !map.contains_key(k)).count();
        if map.len() + missing > MAX_ENTRIES && !make_room(&mut map, now, missing) {
            // Every remembered name and address is held back: so is this one.
            return Err(WINDOW);
        }
        for (key, _) in keys {
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
        Ok(())
    }

    /// A successful login clears the user's count and gives the address its attempt back.
    pub(crate) fn succeeded(&self, user: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&user_key(user));
        if let Some(f) = map.get_mut(&address_key(address)) {
            f.count = f.count.saturating_sub(1);
        }
    }
}

/// Forgets expired entries, else the oldest tenth of those not holding anything back; whether
/// there is room for `needed` more now.
fn make_room(map: &mut HashMap<String, Failures>, now: Instant, needed: usize) -> bool {
    map.retain(|_, f| now.duration_since(f.since) < WINDOW);
    if map.len() + needed <= MAX_ENTRIES {
        return true;
    }
    let blocking = |key: &str, f: &Failures| {
        let limit = if key.starts_with("user:") {
            PER_USER
        } else {
            PER_ADDRESS
        };
        f.count >= limit
    };
    let mut idle: Vec<(Instant, String)> = map
        .iter()
        .filter(|(k, f)| !blocking(k, f))
        .map(|(k, f)| (f.since, k.clone()))
        .collect();
    idle.sort();
    for (_, key) in idle.into_iter().take((MAX_ENTRIES / 10).max(needed)) {
        map.remove(&key);
    }
    map.len() + needed <= MAX_ENTRIES
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
            assert!(limits.attempt("alice", "10.0.0.1").is_ok());
        }
        let wait = limits.attempt("alice", "10.0.0.2").expect_err("held back");
        assert!(wait <= WINDOW && wait > Duration::ZERO);
        assert!(limits.attempt("bob", "10.0.0.3").is_ok(), "others are not");
        limits.succeeded("alice", "10.0.0.2");
        assert!(limits.attempt("alice", "10.0.0.2").is_ok());
    }

    #[test]
    fn an_address_is_held_back_after_twenty_failures_whatever_the_names() {
        let limits = LoginLimits::default();
        for i in 0..PER_ADDRESS {
            assert!(limits.attempt(&format!("user{i}"), "10.0.0.9").is_ok());
        }
        assert!(limits.attempt("someone-new", "10.0.0.9").is_err());
        assert!(limits.attempt("someone-new", "10.0.0.10").is_ok());
    }

    #[test]
    fn memory_stays_bounded_and_a_held_back_user_is_never_forgotten() {
        let limits = LoginLimits::default();
        for _ in 0..PER_USER {
            let _ = limits.attempt("victim", "10.0.0.1");
        }
        for i in 0..(MAX_ENTRIES + 500) {
            let _ = limits.attempt(&format!("u{i}"), &format!("10.1.{}.{}", i / 250, i % 250));
        }
        let len = limits.failures.lock().map(|m| m.len()).unwrap_or(0);
        assert!(len <= MAX_ENTRIES, "{len}");
        assert!(
            limits.attempt("victim", "10.9.9.9").is_err(),
            "still held back"
        );
    }

    #[test]
    fn simultaneous_guesses_count_before_their_passwords_are_checked() {
        let limits = LoginLimits::default();
        let allowed = (0..100)
            .filter(|_| limits.attempt("alice", "10.0.0.1").is_ok())
            .count();
        assert_eq!(allowed, PER_USER as usize);
    }
}
