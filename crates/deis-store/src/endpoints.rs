//! Keeps an etcd client's endpoints to the members that can be reached. etcd-client spreads
//! requests over its endpoints, and a request sent to a member whose host is lost fails
//! ("tcp connect error") rather than going to another: with one member of three lost, a third
//! of all requests (lease renewals, route updates) failed. So every [`PROBE_EVERY`] each
//! endpoint gets a TCP connect: one that fails is taken out of the client (never the last one),
//! one that answers again is put back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;

/// How often the endpoints are probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long a probe's connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// Stops the probing task when the last handle on the store is dropped.
pub(crate) struct Prober(tokio::task::AbortHandle);

impl Drop for Prober {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `host:port` of an endpoint URL (`https://10.0.0.1:2379` → `10.0.0.1:2379`).
fn authority(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

async fn answers(endpoint: &str) -> bool {
    matches!(
        tokio::time::timeout(
            PROBE_TIMEOUT,
            tokio::net::TcpStream::connect(authority(endpoint))
        )
        .await,
        Ok(Ok(_))
    )
}

/// Starts probing `endpoints` of `client` (nothing to do with one endpoint).
pub(crate) fn watch(client: &Client, endpoints: &[String]) -> Option<Arc<Prober>> {
    if endpoints.len() < 2 {
        return None;
    }
    let client = client.clone();
    let endpoints = endpoints.to_vec();
    let task = tokio::spawn(async move {
        let mut out: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            for endpoint in &endpoints {
                let up = answers(endpoint).await;
                let is_out = out.contains(endpoint);
                if !up && !is_out && out.len() + 1 < endpoints.len() {
                    if client.remove_endpoint(endpoint).await.is_ok() {
                        tracing::warn!(etcd.endpoint = %endpoint, "etcd member out of reach; leaving it out until it answers");
                        out.insert(endpoint.clone());
                    }
                } else if up && is_out && client.add_endpoint(endpoint).await.is_ok() {
                    tracing::info!(etcd.endpoint = %endpoint, "etcd member answers again");
                    out.remove(endpoint);
                }
            }
        }
    });
    Some(Arc::new(Prober(task.abort_handle())))
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn an_endpoints_authority_is_its_host_and_port() {
        assert_eq!(authority("https://10.0.0.1:2379"), "10.0.0.1:2379");
        assert_eq!(authority("http://etcd:2379/"), "etcd:2379");
        assert_eq!(authority("10.0.0.1:2379"), "10.0.0.1:2379");
    }
}
