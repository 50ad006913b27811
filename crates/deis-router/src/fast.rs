//! The fast path for plain HTTP/1.1 requests, on clear text and on TLS without `h2` by ALPN:
//! the request head is parsed by `httparse` in place ([`head`]), admitted, rewritten and routed
//! by the same phases as hyper's path (`proxy::admission`, `proxy::headers`, `proxy::balance`),
//! and sent to the backend on one of the worker's idle connections ([`upstream`]) from the
//! client connection's own task: no header map, no client pool, no task per backend connection.
//! Bodies stream both ways in bounded memory ([`body`]); the response head is rewritten in
//! [`response`]; forwarding, retries and failures follow `proxy::retry`'s rules ([`exchange`]).
//!
//! What the fast path does not serve goes to hyper as before, with the bytes already read put
//! back in front ([`rewind`]): HTTP/2 with prior knowledge (h2c), HTTP/1.0, upgrades
//! (WebSocket), `Expect: 100-continue`, targets that are not a path and requests without
//! `Host`. Request smuggling is refused with 400 ([`head`]); a head past 64 KiB gets 431.
//!
//! An idle connection holds no buffer (it reads into its worker's scratch buffer and keeps
//! only what arrived), no timer and no shutdown listener: one sweeper per worker closes the
//! connections that wait too long for a head, and the idle ones at shutdown ([`idle`]). Its
//! task's future is 280 bytes (824 with a timer and a listener of its own).

mod body;
mod exchange;
mod head;
pub(crate) mod idle;
pub(crate) mod parked;
mod response;
mod rewind;
mod upstream;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::Instrument;

pub(crate) use rewind::Rewind;
pub(crate) use upstream::Pool;

use crate::proxy::fields::Head;
use crate::proxy::{Answer, Conn, Proxy, headers, normalize_host};
use crate::table::Decision;
use head::{Parsed, RequestHead};

/// How long a client has to send a request head, and an idle connection stays open, unless
/// the router's configuration says otherwise.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Room made in a connection's buffer before a read that continues a head or a body.
const READ_SIZE: usize = 16 * 1024;

thread_local! {
    /// Where idle connections of this worker read into.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
}

/// A connection whose readiness can be forgotten once a read came back short of the room it had:
/// the socket is then most likely empty, and the next read waits for the next event instead of
/// trying the socket first and finding nothing (as nginx clears `ready` after a short `recv`).
/// An edge-triggered epoll reports whatever arrives later, so nothing is missed.
pub(crate) trait Drained {
    /// Says that the last read found the socket empty.
    fn drained(&self);

    /// Whether an idle connection of this kind can leave the runtime to be parked.
    const PARKABLE: bool = false;

    /// The socket, out of the runtime, to be parked.
    fn unregistered(self) -> Option<std::net::TcpStream>
    where
        Self: Sized,
    {
        None
    }
}

impl Drained for tokio::net::TcpStream {
    fn drained(&self) {
        let _ = self.try_io(tokio::io::Interest::READABLE, || {
            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
        });
    }

    const PARKABLE: bool = true;

    fn unregistered(self) -> Option<std::net::TcpStream> {
        self.into_std().ok()
    }
}

impl<I> Drained for tokio_rustls::server::TlsStream<I> {
    /// TLS may hold decrypted bytes of its own: its reads go on as they are.
    fn drained(&self) {}
}

/// A client's connection and what was read from it but not yet used.
pub(crate) struct Client<I> {
    pub(crate) io: I,
    pub(crate) buf: BytesMut,
}

/// What comes next on a connection.
enum Next {
    Request(RequestHead),
    Refuse(Answer),
    Fallback,
    Closed,
    /// Idle long enough to be parked.
    Park,
}

/// How a connection's fast path ended.
enum Ended {
    Closed,
    /// Handed to hyper, with what was read.
    Fallback,
    /// To be parked ([`parked`]).
    Park,
}

/// A client connection on the fast path: all its task holds while it waits for a request is
/// this and a read (about 250 bytes; a timer and a shutdown listener each were as much again,
/// see [`idle`]).
pub(crate) struct Connection<I> {
    proxy: Arc<Proxy>,
    conn: Conn,
    client: Client<I>,
    watch: idle::Watch,
}

impl<I> Connection<I>
where
    I: AsyncRead + AsyncWrite + Drained + Unpin + Send,
{
    /// The connection, with its entry in the worker's table (see [`idle`]).
    pub(crate) fn new(proxy: Arc<Proxy>, conn: Conn, io: I, watch: idle::Watch) -> Self {
        Connection {
            proxy,
            conn,
            client: Client {
                io,
                buf: BytesMut::new(),
            },
            watch,
        }
    }

    /// Serves the connection's requests until it closes, or hands it to `fallback` (hyper) for
    /// what the fast path does not serve. A plain `fn` returning a block, not an `async fn`:
    /// the block holds the connection once, where an `async fn` would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn serve<F, Fut>(mut self, fallback: F) -> impl Future<Output = ()> + Send
    where
        F: FnOnce(Rewind<I>) -> Fut + Send,
        Fut: Future<Output = ()> + Send,
    {
        async move {
            match self.requests().await {
                Ended::Closed => {
                    let _ = self.client.io.shutdown().await;
                }
                Ended::Fallback => {
                    let Client { io, buf } = self.client;
                    // Boxed: hyper's connection is large, and most connections never get here.
                    Box::pin(fallback(Rewind::new(buf.freeze(), io))).await;
                }
                Ended::Park => {
                    let since = self.watch.since().unwrap_or_else(tokio::time::Instant::now);
                    let peer = self.conn.peer;
                    if let Some(stream) = self.client.io.unregistered()
                        && parked::park(stream, peer, since).is_some()
                    {
                        tracing::debug!(peer = %peer, "An idle connection could not be parked; closed");
                    }
                }
            }
        }
    }

    async fn requests(&mut self) -> Ended {
        loop {
            // What arrived is moved into the boxed step, so the idle connection's future holds
            // only the read.
            let step: Pin<Box<dyn Future<Output = bool> + Send + '_>> =
                match next_head(&mut self.client, &self.proxy, &self.watch).await {
                    Next::Request(head) => {
                        Box::pin(request(&self.proxy, self.conn, &mut self.client, head))
                    }
                    Next::Refuse(answer) => {
                        let io = &mut self.client.io;
                        Box::pin(async move {
                            let _ = own(io, answer.status_and_body(), None, true).await;
                            false
                        })
                    }
                    Next::Fallback => return Ended::Fallback,
                    Next::Closed => return Ended::Closed,
                    Next::Park => return Ended::Park,
                };
            if !step.await {
                return Ended::Closed;
            }
        }
    }
}

/// Reads until the buffer starts with a whole request head (or what else to do). The worker's
/// sweeper closes the connection if that takes longer than the idle timeout, or if the worker
/// shuts down while nothing of the head has arrived.
async fn next_head<I: AsyncRead + Drained + Unpin>(
    client: &mut Client<I>,
    proxy: &Proxy,
    watch: &idle::Watch,
) -> Next {
    loop {
        if !client.buf.is_empty() {
            let parsed = head::parse(&client.buf);
            if !matches!(parsed, Parsed::Partial) {
                watch.head_in();
            }
            match parsed {
                Parsed::Complete(layout) => {
                    let raw = client.buf.split_to(layout.len).freeze();
                    if client.buf.is_empty() {
                        client.buf = BytesMut::new();
                    }
                    return Next::Request(RequestHead::new(raw, layout));
                }
                Parsed::Refused(answer) => return Next::Refuse(answer),
                Parsed::Fallback => return Next::Fallback,
                Parsed::Partial => {}
            }
        }
        let nothing_read = client.buf.is_empty();
        if nothing_read && proxy.shutdown.is_cancelled() {
            return Next::Closed;
        }
        watch.waiting(nothing_read);
        let read = read_more(&mut client.io, &mut client.buf);
        let read = if I::PARKABLE && nothing_read {
            tokio::select! {
                biased;
                () = watch.park_asked() => return Next::Park,
                read = read => read,
            }
        } else {
            read.await
        };
        match read {
            Ok(n) if n > 0 => {}
            _ => return Next::Closed,
        }
    }
}

/// Reads more of a connection: into the worker's scratch buffer when the connection holds
/// none (keeping only what arrived), else into its own.
async fn read_more<I: AsyncRead + Drained + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if !buf.is_empty() {
        buf.reserve(READ_SIZE);
        let room = buf.capacity() - buf.len();
        let n = io.read_buf(buf).await?;
        if n < room {
            io.drained();
        }
        return Ok(n);
    }
    let n = std::future::poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch.as_mut_slice());
            ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
            buf.extend_from_slice(read.filled());
            Poll::Ready(Ok::<_, std::io::Error>(read.filled().len()))
        })
    })
    .await?;
    if n < READ_SIZE {
        io.drained();
    }
    Ok(n)
}

/// Serves one request in its span (as `proxy::handle`); whether the connection may go on.
async fn request<I>(proxy: &Proxy, conn: Conn, client: &mut Client<I>, head: RequestHead) -> bool
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    let started = Instant::now();
    let table = proxy.table();
    let host = normalize_host(head.host());
    let decision = table.route(&host);
    let path = head.path_and_query().split('?').next().unwrap_or("/");
    let may_go_on = head.body_is_empty() && !head.close();
    if decision == Decision::Unknown && path == "/health-check" {
        let written = own(&mut client.io, (StatusCode::OK, ""), None, !may_go_on).await;
        return written && may_go_on;
    }
    let app = match &decision {
        Decision::Backends(target) => target.app,
        Decision::Unknown => "-",
    };
    let id = headers::request_id(&head);
    let span = tracing::info_span!("request", request.id = %id, http.host = %host, app.name = app);
    let answered = async {
        let outcome = match decision {
            Decision::Unknown => {
                let written = own(
                    &mut client.io,
                    Answer::NotFound.status_and_body(),
                    None,
                    !may_go_on,
                )
                .await;
                exchange::Outcome::own(StatusCode::NOT_FOUND, written && may_go_on)
            }
            Decision::Backends(target) => {
                exchange::forward(proxy, &table, &target, conn, &host, &id, client, &head).await
            }
        };
        let elapsed = started.elapsed();
        proxy
            .metrics
            .request(&proxy.request_cache, app, outcome.status, elapsed);
        if table.settings.access_log {
            tracing::info!(
                target: "deis_router::access",
                app,
                host,
                method = head.method(),
                path,
                status = outcome.status,
                upstream = outcome.upstream,
                client = %conn.peer.ip(),
                tls = conn.tls,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "access"
            );
        }
        outcome.keep_alive && !proxy.shutdown.is_cancelled()
    };
    answered.instrument(span).await
}

/// Writes one of the router's own answers; whether it was written.
async fn own<W: AsyncWrite + Unpin>(
    io: &mut W,
    (status, body): (StatusCode, &str),
    location: Option<&HeaderValue>,
    close: bool,
) -> bool {
    let mut out = Vec::with_capacity(160 + body.len());
    response::write_status(&mut out, status.as_u16(), "");
    head::field(&mut out, b"content-type", b"text/plain; charset=utf-8");
    head::field(
        &mut out,
        b"content-length",
        body.len().to_string().as_bytes(),
    );
    if let Some(location) = location {
        head::field(&mut out, b"location", location.as_bytes());
    }
    if close {
        head::field(&mut out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    io.write_all(&out).await.is_ok() && io.flush().await.is_ok()
}
