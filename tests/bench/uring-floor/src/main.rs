//! The least a plain HTTP/1.1 reverse proxy can do per request, on io_uring (monoio, one
//! runtime per thread, `SO_REUSEPORT` listeners): read a head, write it to an idle upstream
//! connection with `X-Forwarded-For`/`-Proto` set, read the answer (`Content-Length` bodies
//! only), write it back. No routing table, no limits, no timeouts, no logs, no metrics: what
//! it does per request is a floor under any proxy's, ours included, with one `io_uring_enter`
//! for many reads and writes instead of a system call each.
//!
//! `uring-floor <listen> <upstream> [threads]`; `run.sh` compares it with nginx.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

/// Room added to a buffer before a read.
const READ_SIZE: usize = 4096;

thread_local! {
    /// This thread's idle upstream connections.
    static IDLE: RefCell<Vec<TcpStream>> = const { RefCell::new(Vec::new()) };
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| {
        let listen: SocketAddr = args.get(1)?.parse().ok()?;
        let upstream: SocketAddr = args.get(2)?.parse().ok()?;
        let threads: usize = args.get(3).map_or(Some(2), |t| t.parse().ok())?;
        Some((listen, upstream, threads))
    })();
    let Some((listen, upstream, threads)) = parsed else {
        eprintln!("usage: uring-floor <listen address> <upstream address> [threads]");
        return ExitCode::from(2);
    };
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || serve(listen, upstream)))
        .collect();
    for handle in handles {
        if let Ok(Err(e)) = handle.join() {
            eprintln!("uring-floor: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One thread: its own io_uring runtime and listener.
fn serve(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<()> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(4096)
        .build()?;
    runtime.block_on(async move {
        let options = ListenerOpts::new().reuse_port(true).backlog(4096);
        let listener = TcpListener::bind_with_config(listen, &options)?;
        loop {
            let Ok((client, peer)) = listener.accept().await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            monoio::spawn(connection(client, peer, upstream));
        }
    })
}

/// Where a whole head ends in `buf`, if it holds one.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads into `buf` until `whole` finds what it waits for in it, and gives its answer with
/// the buffer; None at the end of the stream or on an error.
async fn read_until(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    whole: impl Fn(&[u8]) -> Option<usize>,
) -> Option<(usize, Vec<u8>)> {
    loop {
        if let Some(found) = whole(&buf) {
            return Some((found, buf));
        }
        buf.reserve(READ_SIZE);
        let (read, b) = stream.read(buf).await;
        buf = b;
        if !matches!(read, Ok(n) if n > 0) {
            return None;
        }
    }
}

/// The request head to send upstream for `head`, or None if it does not parse.
fn upstream_head(head: &[u8], peer: SocketAddr, out: &mut Vec<u8>) -> Option<()> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut fields);
    request.parse(head).ok()?;
    out.clear();
    out.extend_from_slice(request.method?.as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path?.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for field in request.headers.iter() {
        let name = field.name;
        if ["x-forwarded-for", "x-forwarded-proto", "connection"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    out.extend_from_slice(peer.ip().to_string().as_bytes());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\n\r\n");
    Some(())
}

/// How long the whole response in `buf` is, once it is all there.
fn response_len(buf: &[u8]) -> Option<usize> {
    let end = head_end(buf)?;
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut fields);
    response.parse(&buf[..end]).ok()?;
    let length = response
        .headers
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("content-length"))
        .and_then(|f| std::str::from_utf8(f.value).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= end + length).then_some(end + length)
}

/// Serves one client connection until it closes or something fails.
async fn connection(mut client: TcpStream, peer: SocketAddr, upstream: SocketAddr) {
    let (mut buf, mut out, mut answer) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let Some((end, b)) = read_until(&mut client, buf, head_end).await else {
            return;
        };
        buf = b;
        if upstream_head(&buf[..end], peer, &mut out).is_none() {
            return;
        }
        buf.drain(..end);
        let mut backend = match IDLE.with_borrow_mut(Vec::pop) {
            Some(backend) => backend,
            None => match TcpStream::connect(upstream).await {
                Ok(backend) => {
                    let _ = backend.set_nodelay(true);
                    backend
                }
                Err(_) => return,
            },
        };
        let (written, o) = backend.write_all(out).await;
        out = o;
        if written.is_err() {
            return;
        }
        answer.clear();
        let Some((length, a)) = read_until(&mut backend, answer, response_len).await else {
            return;
        };
        answer = a;
        IDLE.with_borrow_mut(|idle| idle.push(backend));
        answer.truncate(length);
        let (written, a) = client.write_all(answer).await;
        answer = a;
        if written.is_err() {
            return;
        }
    }
}
