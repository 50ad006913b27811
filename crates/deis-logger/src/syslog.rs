//! Syslog over UDP (one message per datagram) and TCP (octet-counting `LEN MSG` or one message
//! per line, RFC 6587), in RFC 5424, RFC 3164 or Deis's own format. A line that cannot be parsed
//! is stored as it came; nothing a client sends stops ingestion.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;

use crate::backend::Backend;
use crate::entry::parse;
use crate::gate::Gate;
use crate::service::now;

/// The largest message accepted over TCP; longer ones are cut (and still stored).
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// Receives datagrams until `shutdown`.
pub(crate) async fn udp(
    socket: UdpSocket,
    logs: Backend,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, from)) = received else { continue };
        let mut batch = Vec::new();
        if gate.syslog_allowed(from.ip(), 1) {
            batch.push(parse(&String::from_utf8_lossy(&buf[..n]), now()));
        }
        // Take what else is already waiting, and store it together.
        for _ in 0..512 {
            match socket.try_recv_from(&mut buf) {
                Ok((n, from)) if gate.syslog_allowed(from.ip(), 1) => {
                    batch.push(parse(&String::from_utf8_lossy(&buf[..n]), now()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let batch = gate.known(batch, false).await;
        if !batch.is_empty() {
            logs.append(batch).await;
        }
    }
}

/// Accepts TCP connections until `shutdown`; those from sources not allowed are closed at once.
pub(crate) async fn tcp(
    listener: TcpListener,
    logs: Backend,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) {
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, from)) = accepted else {
            continue;
        };
        if !gate.syslog_allowed(from.ip(), 0) {
            continue;
        }
        let (logs, gate, shutdown) = (logs.clone(), gate.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = connection(stream, logs, gate) => {}
            }
        });
    }
    tasks.close();
}

async fn connection(stream: tokio::net::TcpStream, logs: Backend, gate: Arc<Gate>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut batch = Vec::new();
    loop {
        match next_message(&mut reader).await {
            Some(message) => batch.push(parse(&message, now())),
            None => {
                store(&logs, &gate, std::mem::take(&mut batch)).await;
                return;
            }
        }
        // Store once the buffered input is used up (or the batch is large).
        if reader.buffer().is_empty() || batch.len() >= 1024 {
            store(&logs, &gate, std::mem::take(&mut batch)).await;
        }
    }
}

async fn store(logs: &Backend, gate: &Gate, batch: Vec<crate::entry::Entry>) {
    let batch = gate.known(batch, false).await;
    if !batch.is_empty() {
        logs.append(batch).await;
    }
}

/// One framed message, or `None` at the end of the stream.
pub(crate) async fn next_message<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Option<String> {
    let first = loop {
        let buf = reader.fill_buf().await.ok()?;
        match buf.first() {
            None => return None,
            Some(b'\n' | b'\r') => reader.consume(1),
            Some(b) => break *b,
        }
    };
    if first.is_ascii_digit() {
        // Octet counting: `LEN SP MSG`, if the digits are followed by a space.
        let buf = reader.fill_buf().await.ok()?;
        let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits < buf.len() && buf[digits] == b' ' && digits <= 7 {
            let len: usize = std::str::from_utf8(&buf[..digits]).ok()?.parse().ok()?;
            reader.consume(digits + 1);
            let mut message = vec![0u8; len.min(MAX_MESSAGE)];
            reader.read_exact(&mut message).await.ok()?;
            if len > MAX_MESSAGE {
                let mut rest = reader.take((len - MAX_MESSAGE) as u64);
                tokio::io::copy(&mut rest, &mut tokio::io::sink())
                    .await
                    .ok()?;
            }
            return Some(String::from_utf8_lossy(&message).into_owned());
        }
    }
    let mut line = Vec::new();
    let mut limited = (&mut *reader).take(MAX_MESSAGE as u64);
    limited.read_until(b'\n', &mut line).await.ok()?;
    if line.last() != Some(&b'\n') && line.len() >= MAX_MESSAGE {
        // Too long: keep the start, and skip to the end of the line without keeping it.
        while let Ok(buf) = reader.fill_buf().await {
            if buf.is_empty() {
                break;
            }
            match buf.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    reader.consume(at + 1);
                    break;
                }
                None => {
                    let n = buf.len();
                    reader.consume(n);
                }
            }
        }
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn octet_counting_and_newlines_mix() {
        let input: &[u8] = b"11 hello world\nplain line\r\n5 abcde7 x[1]: y\n\n";
        let mut reader = BufReader::new(input);
        let mut got = Vec::new();
        while let Some(m) = next_message(&mut reader).await {
            got.push(m.trim_end().to_owned());
        }
        assert_eq!(got, ["hello world", "plain line", "abcde", "x[1]: y"]);
    }

    #[tokio::test]
    async fn an_overlong_line_is_cut_and_the_next_one_read() {
        let mut input = "a".repeat(MAX_MESSAGE * 3).into_bytes();
        input.extend_from_slice(b"\nnext\n");
        let mut reader = BufReader::new(input.as_slice());
        let first = next_message(&mut reader).await.expect("the cut line");
        assert_eq!(first.len(), MAX_MESSAGE);
        assert_eq!(next_message(&mut reader).await.as_deref(), Some("next\n"));
    }
}
