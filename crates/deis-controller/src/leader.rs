//! One controller at a time. Several replicas may run on one etcd (two on a cluster, on two
//! hosts); a controller serves the API, reconciles and deploys only while it holds
//! `/deis/controller/leader`, a key under a lease it keeps alive. The others stand by on their
//! listener, answering `/healthz` (200: they are up, for the Swarm and deisctl) and passing
//! every other request on to the leader (a 503 that says why when there is none they can
//! reach: with etcd out of reach, no controller leads and changes are refused), and take over
//! when the leader's lease lapses: at once when it stops (it revokes the lease), within
//! [`TTL`] when it dies. A leader that loses its lease, or cannot renew it for a whole TTL,
//! stops at once, so two controllers never deploy at the same time; the Swarm starts it again,
//! as a stand-by.
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
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
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
        // What a stand-by does with the requests that reach it meanwhile.
        let mut answer = Answer::Refuse(ANOTHER_LEADS);
        match try_lead(store, me).await {
            Ok(Some(lease)) => {
                if announced {
                    tracing::info!("This controller leads now");
                }
                return Some(lease);
            }
            Ok(None) => {
                let holder = store
                    .get(&Key::controller_leader().path())
                    .await
                    .ok()
                    .flatten()
                    .map(|kv| kv.value)
                    .unwrap_or_default();
                if !announced {
                    tracing::info!(leader = %holder, "Another controller leads; standing by");
                    announced = true;
                }
                if !holder.is_empty() && holder != me {
                    answer = Answer::Forward(Arc::from(holder));
                }
            }
            // The store out of reach: standing by (up, not serving) until it answers.
            Err(e) => {
                answer = Answer::Refuse(STORE_AWAY);
                let text = e.to_string();
                if text != last_error {
                    tracing::warn!(error = %text, "Cannot reach the config store to take the lead; standing by");
                    last_error = text;
                }
            }
        }
        if !answer_for(RETRY, listener, &answer, shutdown).await {
            return None;
        }
    }
}

/// Answers the requests that arrive within `period` with `answer`: `false` if shutdown came
/// first.
async fn answer_for(
    period: Duration,
    listener: &TcpListener,
    answer: &Answer,
    shutdown: &CancellationToken,
) -> bool {
    let retry = tokio::time::sleep(period);
    tokio::pin!(retry);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = &mut retry => return true,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(stand_by(stream, answer.clone()));
                }
            }
        }
    }
}

/// Answers every request with the refusal `why` (a 503; `/healthz` and the client's probe as a
/// stand-by answers them) until `attempt` succeeds, trying it again every [`RETRY`] while it
/// fails with an error `passing` says will pass; its value, the error that will not pass, or
/// `None` at shutdown. The leader opens its database this way: while the database's host is
/// lost, users are told why their changes are refused instead of finding no controller.
pub(crate) async fn refuse_until<T, E, F, Fut>(
    listener: &TcpListener,
    why: &'static str,
    shutdown: &CancellationToken,
    passing: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last_error = String::new();
    let mut first = true;
    loop {
        let tried = attempt();
        tokio::pin!(tried);
        let failed = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                result = &mut tried => match result {
                    Err(e) if passing(&e) => break e,
                    other => return Some(other),
                },
                // The first attempt is the usual start: requests wait in the backlog for it.
                accepted = listener.accept(), if !first => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(stand_by(stream, Answer::Refuse(why)));
                    }
                }
            }
        };
        first = false;
        let text = failed.to_string();
        if text != last_error {
            tracing::warn!(error = %text, "Leading, but refusing requests until this passes");
            last_error = text;
        }
        if !answer_for(RETRY, listener, &Answer::Refuse(why), shutdown).await {
            return None;
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

/// Keeps the place until `shutdown` (then frees it). If the lease is lost anyway, or cannot be
/// renewed for a whole [`TTL`] (etcd without its majority never lets it lapse, and another
/// controller may lead once it is back), cancels `shutdown`: a controller that may no longer
/// lead stops.
pub(crate) async fn hold(store: Arc<dyn ConfigStore>, lease: LeaseId, shutdown: CancellationToken) {
    match deis_store::hold_lease(store, lease, TTL, shutdown.clone()).await {
        Ok(()) => {}
        Err(e @ StoreError::LeaseNotFound(_)) => {
            tracing::error!(error = %e, "This controller lost the lead; stopping so that another one leads");
            shutdown.cancel();
        }
        Err(e) => {
            tracing::error!(error = %e, "The config store has not renewed this controller's lead; stopping so that no two controllers lead");
            shutdown.cancel();
        }
    }
}

/// A stand-by's refusal while another controller leads but cannot be reached from here.
const ANOTHER_LEADS: &str = "{\"detail\": \"this controller stands by; another one leads\"}\n";

/// A stand-by's refusal while the config store is out of reach (no controller can lead).
const STORE_AWAY: &str = "{\"detail\": \"the platform cannot reach its config store (etcd has lost its majority or is down): changes are refused until it answers again; apps keep serving\"}\n";

/// The leader's refusal while its database is out of reach (its host lost, say).
pub(crate) const DATABASE_AWAY: &str = "{\"detail\": \"the platform's database cannot be reached: changes are refused until it answers again (apps keep serving); try again in a moment\"}\n";

/// What a stand-by does with a request: passes it to the leader at that address, or refuses it.
#[derive(Clone)]
enum Answer {
    Forward(Arc<str>),
    Refuse(&'static str),
}

type Body = BoxBody<Bytes, hyper::Error>;

fn refusal(body: &'static str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// The `deis` client's check that it talks to a controller (`GET /v1/` without a token): a
/// stand-by answers it as the leader would, so that the client goes on to the request and
/// shows why it is refused instead of doubting it reached a controller.
fn is_probe(request: &Request<Incoming>) -> bool {
    request.method() == hyper::Method::GET
        && matches!(request.uri().path(), "/v1/" | "/v1")
        && !request.headers().contains_key(hyper::header::AUTHORIZATION)
}

/// The API's answer to a request without credentials.
fn unauthenticated() -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(
            b"{\"detail\": \"Authentication credentials were not provided.\"}\n",
        ))
        .map_err(|never| match never {})
        .boxed(),
    );
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Token"),
    );
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The leader's answer to `request`, over a connection of its own.
async fn forward(request: Request<Incoming>, leader: &str) -> Option<Response<Body>> {
    let stream = tokio::time::timeout(FORWARD_CONNECT, tokio::net::TcpStream::connect(leader))
        .await
        .ok()?
        .ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.ok()?;
    Some(response.map(BodyExt::boxed))
}

/// How long a stand-by tries to reach the leader before it refuses the request.
const FORWARD_CONNECT: Duration = Duration::from_secs(3);

/// One request on one connection, as a stand-by answers it: `/healthz` itself (it is up),
/// anything else passed on to the leader, or refused with a 503 saying why.
async fn stand_by(stream: tokio::net::TcpStream, answer: Answer) {
    let service = hyper::service::service_fn(|request: Request<Incoming>| {
        let answer = answer.clone();
        async move {
            if request.uri().path() == "/healthz" {
                let ok = Full::new(Bytes::from_static(b"OK (standing by)\n"))
                    .map_err(|never| match never {})
                    .boxed();
                return Ok::<_, Infallible>(Response::new(ok));
            }
            if is_probe(&request) {
                return Ok(unauthenticated());
            }
            Ok(match answer {
                Answer::Forward(leader) => forward(request, &leader)
                    .await
                    .unwrap_or_else(|| refusal(ANOTHER_LEADS)),
                Answer::Refuse(why) => refusal(why),
            })
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}
