//! A TCP relay between the proxy and the registry whose answers can be held back: a test
//! closes the gate, makes its requests, and opens it once they are all waiting.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay to one address.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays connections to `target`, with the gate open.
    pub(crate) async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("address");
        let (gate, open) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let open = open.clone();
                tokio::spawn(async move {
                    if let Ok(upstream) = TcpStream::connect(target).await {
                        relay(client, upstream, open).await;
                    }
                });
            }
        });
        Relay { addr, gate, task }
    }

    /// Holds back every answer from now on.
    pub(crate) fn close(&self) {
        self.gate.send_replace(false);
    }

    /// Lets answers through again.
    pub(crate) fn open(&self) {
        self.gate.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: TcpStream, mut open: watch::Receiver<bool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = tokio::io::copy(&mut client_read, &mut upstream_write);
    let answers = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = upstream_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if open.wait_for(|open| *open).await.is_err() {
                return Ok(());
            }
            client_write.write_all(&buf[..n]).await?;
        }
    };
    let _ = tokio::join!(requests, answers);
}
