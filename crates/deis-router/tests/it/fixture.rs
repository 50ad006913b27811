//! A router on loopback fed by an in-memory config store, real upstream servers, and clients
//! for HTTP/1.1, h2c and HTTPS (with SNI and ALPN).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use deis_router::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::eventually;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A router and its store; the router stops when this is dropped.
pub(crate) struct Fixture {
    pub(crate) http: SocketAddr,
    pub(crate) https: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) store: Arc<dyn ConfigStore>,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Fixture {
    /// Writes a key.
    pub(crate) async fn put(&self, key: &str, value: &str) {
        self.store.put(key, value, None).await.expect("store put");
    }

    /// Writes an app with these backends.
    pub(crate) async fn app(&self, app: &str, backends: &[SocketAddr]) {
        self.put(&format!("/deis/services/{app}"), "alice").await;
        for (i, b) in backends.iter().enumerate() {
            self.put(
                &format!("/deis/services/{app}/{app}_v1.web.{}", i + 1),
                &b.to_string(),
            )
            .await;
        }
    }
}

/// Starts a router for the platform domain `example.com`.
pub(crate) async fn router() -> Fixture {
    router_with(|_| {}).await
}

/// Starts a router for the platform domain `example.com`, its configuration changed by `change`.
pub(crate) async fn router_with(change: impl FnOnce(&mut Config)) -> Fixture {
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
    store
        .put("/deis/platform/domain", "example.com", None)
        .await
        .expect("store");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config {
        listen: loopback,
        https_listen: Some(loopback),
        admin_listen: loopback,
        ..Config::default()
    };
    change(&mut config);
    let listeners = Listeners::bind(&config).await.expect("bind");
    let http = listeners.http.local_addr().expect("addr");
    let https = listeners
        .https
        .as_ref()
        .expect("https listener")
        .local_addr()
        .expect("addr");
    let admin = listeners.admin.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(deis_router::run(
        config,
        store.clone(),
        listeners,
        shutdown.clone(),
    ));
    Fixture {
        http,
        https,
        admin,
        store,
        shutdown,
    }
}

/// An upstream that answers `<name> <x-forwarded-for> <x-forwarded-proto> <x-request-id set?>`.
pub(crate) async fn upstream(name: &'static str) -> SocketAddr {
    serve(echo_app(name)).await
}

/// Serves `app` on a free loopback port.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The upstream's routes: `/` describes the request, `/slow` answers after 2 s, `/upload`
/// counts the body's bytes.
pub(crate) fn echo_app(name: &'static str) -> Router {
    Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: axum::body::Bytes| async move {
                format!("{} bytes", body.len())
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(move |req: Request| async move {
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            format!(
                "{name} {} {} {}",
                header("x-forwarded-for"),
                header("x-forwarded-proto"),
                req.headers().contains_key("x-request-id")
            )
        })
}

/// A raw HTTP/1.1 exchange on a fresh connection: the status and the whole response text.
pub(crate) async fn raw(router: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(router)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

/// `GET /` with `Host: host`: the status and body.
pub(crate) async fn get(router: SocketAddr, host: &str) -> (u16, String) {
    get_path(router, host, "/").await
}

/// `GET path` with `Host: host`: the status and body.
pub(crate) async fn get_path(router: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (status, raw) = raw(router, &request).await;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until `host` answers `expect` with a body containing `needle`.
pub(crate) async fn answers(router: SocketAddr, host: &str, expect: u16, needle: &str) {
    let (host, needle) = (host.to_owned(), needle.to_owned());
    eventually(
        Duration::from_secs(10),
        &format!("{host} to answer {expect} with {needle:?}"),
        || {
            let (host, needle) = (host.clone(), needle.clone());
            async move {
                let (status, body) = get(router, &host).await;
                if status == expect && body.contains(&needle) {
                    Ok(())
                } else {
                    Err(format!("{status} {body}"))
                }
            }
        },
    )
    .await;
}

/// A response as a client saw it.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) status: u16,
    pub(crate) version: http::Version,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

/// A self-signed certificate for `name`: (certificate PEM, key PEM).
pub(crate) fn certificate(name: &str) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// `GET /` over TLS with SNI `host`, trusting only `trusted` (a certificate PEM), offering
/// `alpn`; fails if the handshake fails (for example when another certificate is served).
pub(crate) async fn https_get(
    router: SocketAddr,
    host: &str,
    trusted: &str,
    alpn: &[&str],
) -> Result<Seen, String> {
    let provider = rustls::crypto::ring::default_provider();
    let tls = tls_connect(router, host, trusted, alpn, provider).await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let uri = format!("https://{host}/");
    send(TokioIo::new(tls), h2, &uri, host).await
}

/// A TLS connection to the router with SNI `host`, trusting only `trusted` (a certificate
/// PEM), offering `alpn` and what `provider` offers.
pub(crate) async fn tls_connect(
    router: SocketAddr,
    host: &str,
    trusted: &str,
    alpn: &[&str],
    provider: rustls::crypto::CryptoProvider,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(trusted.as_bytes())
        .map_err(|e| e.to_string())?;
    roots.add(der).map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(router)
        .await
        .map_err(|e| e.to_string())?;
    let name =
        rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// `GET /` over HTTP/2 without TLS (prior knowledge).
pub(crate) async fn h2c_get(router: SocketAddr, host: &str) -> Result<Seen, String> {
    let tcp = tokio::net::TcpStream::connect(router)
        .await
        .map_err(|e| e.to_string())?;
    send(TokioIo::new(tcp), true, &format!("http://{host}/"), host).await
}

async fn send<I>(io: I, h2: bool, uri: &str, host: &str) -> Result<Seen, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut request = http::Request::get(uri);
    if !h2 {
        request = request.header(http::header::HOST, host);
    }
    let request = request
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await
    }
    .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Seen {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
