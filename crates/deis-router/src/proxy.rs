//! The reverse proxy: picks the target for a request's host from the current table and runs
//! the request through its phases, each in a module of its own: [`admission`] (allow-lists,
//! HTTPS enforcement, body size), [`headers`] (hop-by-hop, `X-Forwarded-*`, `X-Request-Id`,
//! HSTS), [`balance`] (round-robin or affinity), then either [`upgrade`] (WebSocket) or
//! [`retry`] (send, and on a refused connection try the next backend) through the worker's
//! [`pools`]. The router's own answers are in [`answer`]. Every request runs in a `request`
//! span with its id, host and app, so its log lines can be followed.

pub(crate) mod admission;
mod answer;
pub(crate) mod balance;
pub(crate) mod fields;
pub(crate) mod headers;
mod pools;
mod retry;

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub(crate) use answer::{Answer, text};
pub(crate) use headers::connection_tokens;

use crate::health::Health;
use crate::metrics::{Metrics, RequestCache};
use crate::table::{Decision, Table, Target};
use crate::upgrade;

/// What every request handler of one worker shares.
pub(crate) struct Proxy {
    /// The routing table as this worker last saw it, and the channel of new ones.
    table: Mutex<WorkerTable>,
    pools: pools::Pools,
    /// The fast path's idle backend connections.
    pub(crate) idle: crate::fast::Pool,
    /// The round-robin position.
    next: AtomicUsize,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_cache: RequestCache,
    pub(crate) shutdown: CancellationToken,
    /// The worker's tasks: connections, upgraded connections, health probes.
    pub(crate) tasks: TaskTracker,
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    /// The port the client connected to (for `X-Forwarded-Port`).
    pub(crate) port: u16,
}

impl Proxy {
    /// A proxy with its own connection pools and tasks; `health` and `metrics` are shared by
    /// all. `shutdown` is the worker's own token (a child of the router's, so that waiting on
    /// it takes no lock shared with the other workers).
    pub(crate) fn new(
        tables: watch::Receiver<Arc<Table>>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let pools = pools::Pools::new(&tables.borrow().settings);
        let table = Mutex::new(WorkerTable::new(tables));
        Arc::new(Proxy {
            table,
            pools,
            idle: crate::fast::Pool::default(),
            next: AtomicUsize::new(0),
            health,
            metrics,
            request_cache: RequestCache::default(),
            shutdown,
            tasks: TaskTracker::new(),
        })
    }
}

/// A worker's own copy of the current table: the workers then share no reference count, and
/// the check for a new table is a read of the channel's version.
struct WorkerTable {
    tables: watch::Receiver<Arc<Table>>,
    current: Arc<Table>,
}

impl WorkerTable {
    fn new(mut tables: watch::Receiver<Arc<Table>>) -> Self {
        let current = Arc::new(Table::clone(&tables.borrow_and_update()));
        WorkerTable { tables, current }
    }
}

impl Proxy {
    /// The current routing table.
    pub(crate) fn table(&self) -> Arc<Table> {
        let mut cached = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.tables.has_changed().unwrap_or(false) {
            let fresh = Table::clone(&cached.tables.borrow_and_update());
            cached.current = Arc::new(fresh);
        }
        cached.current.clone()
    }
}

/// The request's host, lower-case, without port.
pub(crate) fn host_of(request: &Request<Incoming>) -> String {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    normalize_host(raw)
}

/// A `Host` header's host: lower-case, without port or trailing dot, brackets off IPv6.
pub(crate) fn normalize_host(raw: &str) -> String {
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match raw.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        },
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Handles one request in its span (`request.id`, `http.host`, `app.name`) and logs it.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Conn,
    request: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let table = proxy.table();
    let host = host_of(&request);
    let decision = table.route(&host);
    if decision == Decision::Unknown && request.uri().path() == "/health-check" {
        // Load balancers ask this constantly; it is not logged (as in Deis).
        return text(StatusCode::OK, "");
    }
    let app = match &decision {
        Decision::Backends(target) => target.app,
        Decision::Unknown => "-",
    };
    let id = headers::request_id(request.headers());
    let span = tracing::info_span!("request", request.id = %id, http.host = %host, app.name = app);
    let answered = async {
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let (response, upstream) = match decision {
            Decision::Unknown => (Answer::NotFound.response(), String::new()),
            Decision::Backends(target) => {
                forward(&proxy, &table, &target, conn, &host, &id, request).await
            }
        };
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        proxy
            .metrics
            .request(&proxy.request_cache, app, status, elapsed);
        if table.settings.access_log {
            tracing::info!(
                target: "deis_router::access",
                app,
                host,
                method = %method,
                path,
                status,
                upstream,
                client = %conn.peer.ip(),
                tls = conn.tls,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "access"
            );
        }
        response
    };
    answered.instrument(span).await
}

/// Runs a request admitted to `target` through its phases; returns the response and the
/// backend that gave it (empty when the router answered itself).
async fn forward(
    proxy: &Proxy,
    table: &Table,
    target: &Target<'_>,
    conn: Conn,
    host: &str,
    request_id: &str,
    mut request: Request<Incoming>,
) -> (Response<Body>, String) {
    let settings = &table.settings;
    let admitted = match admission::admit(settings, target, &conn, host, &request) {
        Ok(admitted) => admitted,
        Err(refused) => return (refused.response(), String::new()),
    };
    let client_upgrade =
        upgrade::requested(request.headers()).then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
    headers::to_upstream(&mut parts, &admitted, conn.port, request_id);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let timeouts = settings.timeouts(target.controller);
    let order = balance::backend_order(proxy, settings, target.backends, parts.uri.query());
    let body = match settings.body_size {
        Some(limit) => Body::new(http_body_util::Limited::new(body, limit as usize)),
        None => Body::new(body),
    };
    if let (Some(client), Some(value), Some(&backend)) =
        (client_upgrade, upgrade_value, order.first())
    {
        upgrade::restore_headers(&mut parts.headers, value);
        let response = upgrade::forward(proxy, backend, parts, path, body, client, timeouts).await;
        return (response, backend.clone());
    }
    let outgoing = retry::Outgoing {
        parts,
        path,
        body,
        empty_body: admitted.empty_body,
        timeouts,
        hsts: settings
            .hsts
            .as_deref()
            .filter(|_| admitted.scheme == "https"),
    };
    retry::send(proxy, target, order, outgoing).await
}
