//! Passwords (argon2, hashed off the async threads, a few at a time) and API tokens (40 random
//! hex digits).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// Why a password could not be hashed (a failure of ours, never of the password).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    #[error("the password hashing queue is closed")]
    Closed(#[source] tokio::sync::AcquireError),
    /// argon2's error is not a `std::error::Error` (no `std` feature), so its text is kept.
    #[error("hashing the password failed: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the password hashing task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// How many password hashes run at once; the rest wait their turn. Each takes about 19 MiB
/// and a core for tens of milliseconds, so a flood of logins or registrations neither
/// exhausts memory nor starves the other requests.
const HASHING_AT_ONCE: usize = 4;

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_AT_ONCE);

/// A valid hash of a password nobody has, to spend the same time on unknown users.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$o4m0Zpt1qMwo7v9n/ZQz5xoMjFXm0WmT7Ba1HvBCtdo";

/// A new API token.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hashes a password with argon2id and a random salt.
pub(crate) async fn hash(password: &str) -> Result<String, HashError> {
    let password = password.to_owned();
    let _turn = HASHING.acquire().await.map_err(HashError::Closed)?;
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(HashError::Hash)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(HashError::Hash)
    })
    .await
    .map_err(HashError::Task)?
}

/// Whether `password` matches a stored hash.
pub(crate) async fn verify(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    let Ok(_turn) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}
