//! Waiting for a condition with a deadline, instead of sleeping.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns `Some`, and returns that value. Panics with `what`
/// and the last state `check` reported if `timeout` passes first.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    match within(timeout, check).await {
        Ok(value) => value,
        Err(last) => {
            panic!("timed out after {timeout:?} waiting for {what}; last state: {last}")
        }
    }
}

/// [`eventually`] for a caller that says more when it fails: the last state `check` reported
/// once `timeout` passes.
pub async fn within<T, F, Fut>(timeout: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
