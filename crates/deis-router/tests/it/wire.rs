//! Raw HTTP/1.1 on both sides of the router, for the fast path's tests: a client that reads
//! responses one by one off a kept-alive connection, and backends written by hand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A response as read off the wire.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) status: u16,
    /// The head's fields, names lower-case.
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Wire {
    /// The first value of `name` (lower-case).
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection and what it read past the last response.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    async fn more(&mut self) -> usize {
        let mut chunk = [0u8; 16384];
        let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk));
        let n = read.await.expect("an answer within 10 s").unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads the next response (`None` if the connection closed first).
    pub(crate) async fn response(&mut self) -> Option<Wire> {
        let (status, fields, len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = parsed.parse(&self.buf) {
                let fields = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect::<Vec<_>>();
                break (parsed.code.unwrap_or(0), fields, len);
            }
            if self.more().await == 0 {
                return None;
            }
        };
        self.buf.drain(..len);
        let mut wire = Wire {
            status,
            fields,
            body: Vec::new(),
        };
        if let Some(length) = wire.field("content-length") {
            let length: usize = length.parse().expect("a length");
            while self.buf.len() < length {
                assert!(self.more().await > 0, "the body ended early");
            }
            wire.body = self.buf.drain(..length).collect();
        } else if wire.field("transfer-encoding") == Some("chunked") {
            wire.body = self.chunked().await;
        } else {
            while self.more().await > 0 {}
            wire.body = std::mem::take(&mut self.buf);
        }
        Some(wire)
    }

    async fn chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(self.more().await > 0, "the chunked body ended early");
            };
            let size = std::str::from_utf8(&self.buf[..line_end]).expect("ascii");
            let size =
                usize::from_str_radix(size.split(';').next().unwrap_or(""), 16).expect("hex");
            while self.buf.len() < line_end + 2 + size + 2 {
                assert!(self.more().await > 0, "the chunked body ended early");
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return body;
            }
        }
    }

    /// Whether the router closed the connection (reading gives nothing more).
    pub(crate) async fn closed(&mut self) -> bool {
        self.buf.is_empty() && self.more().await == 0
    }
}

/// A backend written by hand: `serve` gets each connection; `connections` counts them.
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    pub(crate) connections: Arc<AtomicUsize>,
}

impl Backend {
    pub(crate) async fn start<F, Fut>(serve: F) -> Backend
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        Backend { addr, connections }
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request head off `stream` (and returns it with what followed it).
pub(crate) async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
