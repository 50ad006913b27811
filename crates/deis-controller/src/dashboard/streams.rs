//! How many live streams (log tails, process lists) each user has open: at most
//! [`PER_USER`], so that a script opening thousands cannot make the controller poll the database
//! and the scheduler thousands of times a second. A stream holds its [`Slot`] until it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most live streams one user may have open at once: each app page holds two, and a page
/// left (a reload after a form) frees its slots only once a keep-alive finds it gone.
pub(crate) const PER_USER: usize = 32;

/// The open streams by user.
#[derive(Clone, Default)]
pub(crate) struct Streams {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream of a user; dropped, it is counted no more.
pub(crate) struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl Streams {
    /// A slot for one more stream of `user`, or `None` when they have [`PER_USER`] open.
    pub(crate) fn open(&self, user: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user.to_owned()).or_default();
        if *count >= PER_USER {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.open.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_has_at_most_a_few_streams_and_others_are_not_counted_with_them() {
        let streams = Streams::default();
        let held: Vec<Slot> = (0..PER_USER)
            .map(|_| streams.open("mallory").expect("a slot"))
            .collect();
        assert!(streams.open("mallory").is_none(), "one too many");
        assert!(streams.open("alice").is_some(), "another user's own count");
        drop(held);
        assert!(streams.open("mallory").is_some(), "slots come back");
    }
}
