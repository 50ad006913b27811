//! Forwarding on the fast path, by `proxy::retry`'s rules: backends in the balancer's order; a
//! refused connect takes the backend out and, for a request without a body, goes on to the next;
//! a backend failing mid-request is left for the next only for a body-less idempotent request;
//! no response head within the read timeout is 504. A pooled connection the backend closed
//! before answering is replaced by a new one when nothing of the request was lost. A backend
//! that answers before it has read the whole body gets no more of it: its response is passed on
//! and both connections close.

use axum::http::StatusCode;
use bytes::Buf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{self, BodyError};
use super::head::{Framing, RequestHead};
use super::response::{self, Ask, Meta};
use super::upstream::Upstream;
use super::{Client, Drained, own};
use crate::proxy::admission;
use crate::proxy::balance::backend_order;
use crate::proxy::fields::Head;
use crate::proxy::{Answer, Conn, Proxy};
use crate::settings::Timeouts;
use crate::table::{Table, Target};

/// How a request ended.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) status: u16,
    /// The backend that answered (empty when the router did).
    pub(super) upstream: String,
    /// Whether the client's connection may take another request.
    pub(super) keep_alive: bool,
}

impl Outcome {
    pub(super) fn own(status: StatusCode, keep_alive: bool) -> Outcome {
        Outcome {
            status: status.as_u16(),
            upstream: String::new(),
            keep_alive,
        }
    }
}

/// Why an attempt got no response head.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the backend closed the connection without answering")]
    Closed,
    #[error("the backend failed")]
    Upstream(#[source] std::io::Error),
    #[error("the backend's response head is invalid")]
    Invalid,
    #[error("no response head in time")]
    Timeout,
    #[error("the client's body is larger than allowed")]
    TooLarge,
    #[error("the client's chunked body is malformed")]
    BadBody,
    #[error("the client went away")]
    Client,
}

/// A response head received: what it says, the head written for the client, and whether the
/// request's body was sent whole.
struct Received {
    meta: Meta,
    out: Vec<u8>,
    body_sent: bool,
}

/// Sends the request to `target`'s backends and passes the response on.
#[allow(clippy::too_many_arguments)]
pub(super) async fn forward<I>(
    proxy: &Proxy,
    table: &Table,
    target: &Target<'_>,
    conn: Conn,
    host: &str,
    request_id: &str,
    client: &mut Client<I>,
    head: &RequestHead,
) -> Outcome
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let settings = &table.settings;
    let may_go_on = head.body_is_empty() && !head.close();
    let admitted = match admission::admit(settings, target, &conn, host, head) {
        Ok(admitted) => admitted,
        Err(refused) => {
            let (answer, location) = refused.parts();
            let (status, body) = answer.status_and_body();
            let written = own(&mut client.io, (status, body), location, !may_go_on).await;
            return Outcome::own(status, written && may_go_on);
        }
    };
    let timeouts = settings.timeouts(target.controller);
    let query = head.path_and_query().split_once('?').map(|(_, q)| q);
    let order = backend_order(proxy, settings, target.backends, query);
    let mut upstream_head = Vec::with_capacity(512);
    head.write_upstream(&admitted, conn.port, request_id, &mut upstream_head);
    let ask = Ask {
        head_request: head.method() == "HEAD",
        hsts: settings
            .hsts
            .as_deref()
            .filter(|_| admitted.scheme == "https"),
        close: head.close() || proxy.shutdown.is_cancelled(),
    };
    let repeatable = admitted.empty_body && is_idempotent(head.method());
    'backends: for backend in order {
        let mut pooled = proxy.idle.take(backend, !admitted.empty_body);
        loop {
            let reused = pooled.is_some();
            let mut upstream = match pooled.take() {
                Some(upstream) => upstream,
                None => match Upstream::connect(backend, timeouts.connect).await {
                    Ok(upstream) => upstream,
                    Err(e) => {
                        proxy.metrics.upstream_error(target.app, "connect");
                        tracing::debug!(backend, error = %e, "Connecting to the backend failed");
                        proxy.health.mark_down(backend, &proxy.tasks);
                        if admitted.empty_body {
                            continue 'backends;
                        }
                        return fail(client, may_go_on, Answer::BadGateway, "").await;
                    }
                },
            };
            let sent = send(
                client,
                &mut upstream,
                &upstream_head,
                head.framing(),
                settings.body_size,
                timeouts,
                ask,
            )
            .await;
            let error = match sent {
                Ok(received) => return relay(proxy, backend, client, upstream, received).await,
                Err(Failure::Closed) if reused && admitted.empty_body => continue,
                Err(e) => e,
            };
            match error {
                Failure::Timeout => {
                    proxy.metrics.upstream_error(target.app, "timeout");
                    return fail(client, may_go_on, Answer::GatewayTimeout, backend).await;
                }
                Failure::TooLarge => {
                    proxy.metrics.upstream_error(target.app, "other");
                    return fail(client, may_go_on, Answer::PayloadTooLarge, backend).await;
                }
                Failure::BadBody => {
                    return fail(client, may_go_on, Answer::BadRequest, backend).await;
                }
                Failure::Client => return Outcome::own(StatusCode::BAD_REQUEST, false),
                Failure::Closed | Failure::Upstream(_) | Failure::Invalid => {
                    proxy.metrics.upstream_error(target.app, "other");
                    if repeatable {
                        tracing::debug!(backend, error = %error, "Backend failed; trying the next");
                        continue 'backends;
                    }
                    tracing::warn!(backend, error = %error, "Backend failed");
                    return fail(client, may_go_on, Answer::BadGateway, backend).await;
                }
            }
        }
    }
    fail(client, may_go_on, Answer::BadGateway, "").await
}

/// Answers for a backend that could not; the connection goes on when nothing is left unread.
async fn fail<I>(client: &mut Client<I>, may_go_on: bool, answer: Answer, backend: &str) -> Outcome
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (status, body) = answer.status_and_body();
    let written = own(&mut client.io, (status, body), None, !may_go_on).await;
    Outcome {
        status: status.as_u16(),
        upstream: backend.to_owned(),
        keep_alive: written && may_go_on,
    }
}

/// Sends the head and body on `upstream` and reads the response head, all within the read
/// timeout.
async fn send<I>(
    client: &mut Client<I>,
    upstream: &mut Upstream,
    head: &[u8],
    framing: Framing,
    limit: Option<u64>,
    timeouts: Timeouts,
    mut ask: Ask<'_>,
) -> Result<Received, Failure>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let deadline = tokio::time::Instant::now() + timeouts.read;
    let body_sent = match framing {
        Framing::Empty | Framing::Length(0) | Framing::Close => {
            let written = tokio::time::timeout_at(deadline, upstream.stream.write_all(head)).await;
            written
                .map_err(|_| Failure::Timeout)?
                .map_err(Failure::Upstream)?;
            true
        }
        Framing::Length(_) | Framing::Chunked => {
            let mut out = head.to_vec();
            let (mut from_backend, mut to_backend) = upstream.stream.split();
            let copy = body::copy(
                framing,
                &mut client.io,
                &mut client.buf,
                &mut to_backend,
                &mut out,
                limit,
            );
            let copied = tokio::select! {
                copied = copy => Some(copied),
                // The backend answers (or closes) before it has the whole body.
                _ = from_backend.as_ref().readable() => None,
                () = tokio::time::sleep_until(deadline) => return Err(Failure::Timeout),
            };
            let _ = &mut from_backend;
            match copied {
                Some(Ok(())) => true,
                Some(Err(BodyError::Read(_) | BodyError::Truncated)) => {
                    return Err(Failure::Client);
                }
                Some(Err(BodyError::Invalid)) => return Err(Failure::BadBody),
                Some(Err(BodyError::TooLarge)) => return Err(Failure::TooLarge),
                Some(Err(BodyError::Write(_))) | None => false,
            }
        }
    };
    ask.close |= !body_sent;
    let mut out = Vec::with_capacity(512);
    let mut interim = false;
    loop {
        if !upstream.buf.is_empty() {
            match response::parse(&upstream.buf, ask, &mut out).map_err(|_| Failure::Invalid)? {
                response::Parsed::Partial => {}
                response::Parsed::Interim(len) => {
                    upstream.buf.advance(len);
                    interim = true;
                    continue;
                }
                response::Parsed::Final(meta) => {
                    upstream.buf.advance(meta.len);
                    return Ok(Received {
                        meta,
                        out,
                        body_sent,
                    });
                }
            }
        }
        let nothing_back = upstream.buf.is_empty() && !interim;
        upstream.buf.reserve(super::READ_SIZE);
        let room = upstream.buf.capacity() - upstream.buf.len();
        let read = tokio::time::timeout_at(deadline, upstream.stream.read_buf(&mut upstream.buf));
        match read.await.map_err(|_| Failure::Timeout)? {
            Ok(0) if nothing_back => return Err(Failure::Closed),
            Err(e) if nothing_back && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Failure::Closed);
            }
            Ok(0) => return Err(Failure::Upstream(std::io::ErrorKind::UnexpectedEof.into())),
            Err(e) => return Err(Failure::Upstream(e)),
            Ok(n) if n < room => upstream.stream.drained(),
            Ok(_) => {}
        }
    }
}

/// Passes the response on; keeps the backend's connection when it can take another request.
async fn relay<I>(
    proxy: &Proxy,
    backend: &str,
    client: &mut Client<I>,
    mut upstream: Upstream,
    received: Received,
) -> Outcome
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Received {
        meta,
        mut out,
        body_sent,
    } = received;
    let copied = body::copy(
        meta.framing,
        &mut upstream.stream,
        &mut upstream.buf,
        &mut client.io,
        &mut out,
        None,
    )
    .await;
    if let Err(e) = &copied {
        tracing::debug!(backend, error = %e, "Passing the response on failed");
    }
    let done = copied.is_ok();
    if done && body_sent && meta.reusable && upstream.buf.is_empty() {
        proxy.idle.put(backend, upstream);
    }
    Outcome {
        status: meta.status,
        upstream: backend.to_owned(),
        keep_alive: done && !meta.close,
    }
}

/// Methods whose repetition does no harm.
fn is_idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE")
}
