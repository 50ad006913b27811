//! Memory for idle keep-alive connections: a client process (this bench binary run again with
//! `--idle-client`, so that it gets its own file descriptor limit) opens the connections, makes
//! one request on each and keeps them open while the proxy's resident memory is read.

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::procs::{rss_kib, sh};

/// Connections opened at once while setting up.
const AT_ONCE: usize = 200;

/// The client side: `count` connections to `addr`, one `GET /` with `Host: host` on each, then
/// "ready" on stdout, open until stdin closes.
pub(crate) async fn client(addr: SocketAddr, host: &str, count: usize) {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut open = Vec::with_capacity(count);
    let mut failed = 0;
    for batch in (0..count).collect::<Vec<_>>().chunks(AT_ONCE) {
        let mut tasks = Vec::new();
        for _ in batch {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
                stream.write_all(request.as_bytes()).await.ok()?;
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.ends_with(b"hello, world\n") {
                    let n = stream.read(&mut buf).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                Some(stream)
            }));
        }
        for task in tasks {
            match task.await.ok().flatten() {
                Some(stream) => open.push(stream),
                None => failed += 1,
            }
        }
    }
    println!("ready {} {failed}", open.len());
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    drop(open);
}

/// The proxy's memory (KiB) before and with `count` idle keep-alive connections, and how many
/// were made.
pub(crate) fn measure(
    proxy_pid: u32,
    addr: SocketAddr,
    host: &str,
    count: usize,
) -> (u64, u64, usize) {
    let before = rss_kib(proxy_pid);
    let me = std::env::current_exe().expect("the bench's own path");
    let line = format!("{} --idle-client {addr} {host} {count}", me.display());
    let mut child = sh(&line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the idle client");
    let mut ready = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut ready)
        .expect("the idle client's line");
    let made = ready
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Let the proxy settle (idle timers, freed buffers) before reading its memory.
    std::thread::sleep(Duration::from_secs(2));
    let with = rss_kib(proxy_pid);
    drop(child.stdin.take());
    let _ = child.wait();
    (before, with, made)
}
