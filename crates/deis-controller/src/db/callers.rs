//! Users by token hash as last read, so that checking a request's token needs no query: every
//! change to the users table (through [`super::Db`], the only writer: stand-by controllers pass
//! requests to the leader) forgets them all, an entry lives at most [`TTL`], and at most
//! [`MAX`] are kept. A read that raced a change is not kept (a generation count).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::User;

/// How long a user read stays usable without another read.
const TTL: Duration = Duration::from_secs(5);

/// How many users are kept at most (all are dropped when full).
const MAX: usize = 10_000;

#[derive(Default)]
pub(crate) struct Callers {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    users: HashMap<String, (User, Instant)>,
}

impl Callers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user of a token hash if read within [`TTL`]; else the generation to pass to
    /// [`Callers::keep`] after reading it.
    pub(crate) fn get(&self, hash: &str) -> Result<User, u64> {
        let inner = self.lock();
        match inner.users.get(hash) {
            Some((user, at)) if at.elapsed() < TTL => Ok(user.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Keeps a user read at `generation`, unless users changed since.
    pub(crate) fn keep(&self, hash: &str, user: &User, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.users.len() >= MAX {
            inner.users.clear();
        }
        inner
            .users
            .insert(hash.to_owned(), (user.clone(), Instant::now()));
    }

    /// Users changed: nothing read before is used again.
    pub(crate) fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.users.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(token: &str) -> User {
        User {
            username: "alice".to_owned(),
            password: String::new(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_superuser: false,
            is_active: true,
            token: token.to_owned(),
            token_hash: format!("h-{token}"),
            last_login: None,
            date_joined: 0,
        }
    }

    #[test]
    fn a_change_to_users_forgets_them_and_a_read_that_raced_it_is_not_kept() {
        let callers = Callers::default();
        let generation = callers.get("h-a").expect_err("nothing kept yet");
        callers.keep("h-a", &user("a"), generation);
        assert_eq!(
            callers.get("h-a").map(|u| u.token).ok(),
            Some("a".to_owned())
        );
        callers.forget_all();
        let before = callers.get("h-a").expect_err("forgotten");
        // A read started before a change is not kept.
        callers.forget_all();
        callers.keep("h-a", &user("a"), before);
        assert!(callers.get("h-a").is_err(), "a stale read kept");
    }
}
