//! Waiting for a Docker engine to answer as a Swarm manager.

use std::time::Duration;

use bollard::Docker;

/// How long a manager may take to answer as one: the Swarm elects a new leading manager after a
/// manager's host is lost, and answers "deadline exceeded" meanwhile.
pub const MANAGER_WAIT: Duration = Duration::from_secs(60);

/// Whether an engine's error says the Swarm has no leading manager yet (an election is on).
fn electing(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 500, message }
            if message.contains("DeadlineExceeded") || message.contains("deadline exceeded")
    )
}

/// Waits until `docker` answers as a swarm manager, for at most `within` while the Swarm elects
/// a leading manager; any other error (an engine outside a swarm, say) at once.
pub async fn manager_ready(
    docker: &Docker,
    within: Duration,
) -> Result<(), bollard::errors::Error> {
    let until = tokio::time::Instant::now() + within;
    loop {
        match docker.inspect_swarm().await {
            Ok(_) => return Ok(()),
            Err(e) if electing(&e) && tokio::time::Instant::now() < until => {
                tracing::warn!(error = %e, "The swarm has no leading manager yet; waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_election_is_waited_for_and_nothing_else() {
        let error =
            |status_code: u16, message: &str| bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: message.to_owned(),
            };
        assert!(electing(&error(
            500,
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
        )));
        assert!(!electing(&error(
            503,
            "This node is not a swarm manager. Use \"docker swarm init\""
        )));
    }
}
