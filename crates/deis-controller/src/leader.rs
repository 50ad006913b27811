//! One controller at a time. Several replicas may run on one etcd (two on a cluster, on two
//! hosts); a controller serves the API, reconciles and deploys only while it holds
//! `/deis/controller/leader`, a key under a lease it keeps alive. The others stand by on their
//! listener, answering `/healthz` (200: they are up, for the Swarm and deisctl) and 503 to
//! everything else, and take over when the leader's lease lapses: at once when it stops (it
//! revokes the lease), within [`TTL`] when it dies. A leader that loses its lease (etcd out of
//! reach for a whole TTL) stops at once, so two controllers never deploy at the same time; the
//! Swarm starts it again, as a stand-by.
//!
//! A controller that finds the place held in its own name (its address: its previous run,
//! SIGKILLed before the lease lapsed) takes it back at once. With the in-process store (one
//! host) the one controller is the leader from the start; a store out of reach keeps a
//! controller standing by (it says why) until it answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use deis_store::keys::Key;
use deis_store::{Compare, ConfigStore, LeaseId, Op, StoreError, Txn};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a dead leader holds the place.
pub(crate) const TTL: Duration = Duration::from_secs(10);

/// How often a stand-by tries to take the place (a stopping leader frees it at once).
const RETRY: Duration = Duration::from_millis(500);

/// Waits until this controller leads (`me` is its address, for the key's value), answering on
/// `listener` as a stand-by meanwhile; its lease, or `None` if `shutdown` came first.
pub(crate) async fn campaign(
    store: &Arc<dyn ConfigStore>,
    listener: &TcpListener,
    me: &str,
    shutdown: &CancellationToken,
) -> Option<LeaseId> {
    let mut announced = false;
    let mut last_error = String::new();
    loop {
        match try_lead(store, me).await {
            Ok(Some(lease)) => {
                if announced {
                    tracing::info!("This controller leads now");
                }
                return Some(lease);
            }
            Ok(None) if !announced => {
                let holder = store
                    .get(&Key::controller_leader().path())
                    .await
                    .ok()
                    .flatten()
                    .map(|kv| kv.value)
                    .unwrap_or_default();
                tracing::info!(leader = %holder, "Another controller leads; standing by");
                announced = true;
            }
            Ok(None) => {}
            // The store out of reach: standing by (up, not serving) until it answers.
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    tracing::warn!(error = %text, "Cannot reach the config store to take the lead; standing by");
                    last_error = text;
                }
            }
        }
        let retry = tokio::time::sleep(RETRY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = &mut retry => break,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(stand_by(stream));
                    }
                }
            }
        }
    }
}

/// Takes the place if it is free: the lease it holds it with.
async fn try_lead(store: &Arc<dyn ConfigStore>, me: &str) -> Result<Option<LeaseId>, StoreError> {
    let lease = store.grant_lease(TTL).await?;
    let key = Key::controller_leader().path();
    let mut txn = Txn::create(key.clone(), me);
    txn.success = vec![Op::Put {
        key: key.clone(),
        value: me.to_owned(),
        lease: Some(lease),
    }];
    if store.txn(txn).await?.succeeded {
        return Ok(Some(lease));
    }
    // Held in our own name: this controller's previous run, dead before its lease lapsed (no
    // other live process can have this address: we hold its listener). Taken back at once.
    let unspecified = me
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified());
    if !me.is_empty() && !unspecified {
        let reclaim = Txn {
            compares: vec![Compare::Value {
                key: key.clone(),
                value: me.to_owned(),
            }],
            success: vec![Op::Put {
                key,
                value: me.to_owned(),
                lease: Some(lease),
            }],
            failure: vec![],
        };
        if store.txn(reclaim).await?.succeeded {
            tracing::info!("Took the lead back from this controller's previous run");
            return Ok(Some(lease));
        }
    }
    let _ = store.revoke_lease(lease).await;
    Ok(None)
}

/// Keeps the place until `shutdown` (then frees it); if the lease is lost anyway, cancels
/// `shutdown`: a controller that may no longer lead stops.
pub(crate) async fn hold(store: Arc<dyn ConfigStore>, lease: LeaseId, shutdown: CancellationToken) {
    if let Err(e) = deis_store::keep_lease_alive(store, lease, TTL, shutdown.clone()).await {
        tracing::error!(error = %e, "This controller lost the lead; stopping so that another one leads");
        shutdown.cancel();
    }
}

/// One request on one connection, as a stand-by answers it.
async fn stand_by(stream: tokio::net::TcpStream) {
    let service =
        hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
            let (status, body) = if request.uri().path() == "/healthz" {
                (StatusCode::OK, "OK (standing by)\n")
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{\"detail\": \"this controller stands by; another one leads\"}\n",
                )
            };
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}
