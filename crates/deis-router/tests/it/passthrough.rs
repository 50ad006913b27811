//! `git push` through the router: on a cluster every host's router relays its TCP port (2222
//! there) byte for byte to the builder that etcd names at `/deis/builder/{host,port}`. These
//! run on a real etcd with TCP echo servers standing in for the builder (each greets with its
//! name, as an SSH server sends its banner first), and on the real builder's SSH server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_router::{Config, Listeners};
use deis_store::{ConfigStore, EtcdStore};
use deis_testkit::{Etcd, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::fixture::raw;

/// How long the router may take to close a connection it cannot relay.
const PROMPTLY: Duration = Duration::from_secs(3);

/// A router relaying to the builder etcd names, on loopback; it stops when dropped.
struct Relay {
    /// Where `git push` connects.
    port: SocketAddr,
    admin: SocketAddr,
    store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
    stopped: Option<tokio::task::JoinHandle<()>>,
    _etcd: Etcd,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Relay {
    async fn start(max_connections: usize, drain: Duration) -> Relay {
        let etcd = Etcd::start().await;
        let namespace = format!("/{}", deis_testkit::unique_id());
        let store: Arc<dyn ConfigStore> = Arc::new(
            EtcdStore::connect(&[etcd.endpoint()], &namespace)
                .await
                .expect("connect to etcd"),
        );
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = Config {
            listen: loopback,
            https_listen: None,
            admin_listen: loopback,
            builder_listen: Some(loopback),
            builder_max_connections: max_connections,
            drain,
            ..Config::default()
        };
        let listeners = Listeners::bind(&config).await.expect("bind");
        let port = listeners
            .builder
            .as_ref()
            .expect("the builder listener")
            .local_addr()
            .expect("addr");
        let admin = listeners.admin.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let run = deis_router::run(config, store.clone(), listeners, shutdown.clone());
        let stopped = tokio::spawn(async move { run.await.expect("the router ran") });
        Relay {
            port,
            admin,
            store,
            shutdown,
            stopped: Some(stopped),
            _etcd: etcd,
        }
    }

    /// Registers `builder` as the builder does (`/deis/builder/{host,port}`).
    async fn builder(&self, builder: SocketAddr) {
        let put = |key: &'static str, value: String| {
            let store = self.store.clone();
            async move { store.put(key, &value, None).await.expect("store put") }
        };
        put("/deis/builder/host", builder.ip().to_string()).await;
        put("/deis/builder/port", builder.port().to_string()).await;
    }

    /// A connection through the router to the builder named `name`, its greeting read, once
    /// the router relays to that one.
    async fn connect_to(&self, name: &str) -> TcpStream {
        eventually(
            Duration::from_secs(10),
            &format!("a connection relayed to {name}"),
            || async {
                let mut stream = TcpStream::connect(self.port)
                    .await
                    .map_err(|e| e.to_string())?;
                let greeting = tokio::time::timeout(PROMPTLY, greeting(&mut stream))
                    .await
                    .map_err(|_| "no greeting".to_owned())?;
                if greeting == name {
                    Ok(stream)
                } else {
                    Err(format!("greeted by {greeting:?}"))
                }
            },
        )
        .await
    }

    /// The router's `/metrics` text.
    async fn metrics(&self) -> String {
        raw(
            self.admin,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .1
    }

    /// Waits until `/metrics` shows `line`.
    async fn counted(&self, line: &str) {
        eventually(Duration::from_secs(10), line, || async {
            let metrics = self.metrics().await;
            if metrics.lines().any(|l| l == line) {
                Ok(())
            } else {
                Err(metrics
                    .lines()
                    .filter(|l| l.contains("builder"))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        })
        .await;
    }
}

/// A stand-in for the builder: greets each connection with `name` and a newline, then echoes
/// every byte back until the client is done sending, and then closes.
async fn echo_builder(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                write.write_all(format!("{name}\n").as_bytes()).await.ok()?;
                tokio::io::copy(&mut read, &mut write).await.ok()?;
                write.shutdown().await.ok()
            });
        }
    });
    addr
}

/// Reads the greeting line (without its newline).
async fn greeting(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0];
    while let Ok(1) = stream.read(&mut byte).await {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Sends `data` and reads it back on a relayed connection.
async fn round_trip(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    stream.write_all(data).await.expect("send");
    let mut back = vec![0; data.len()];
    tokio::time::timeout(PROMPTLY, stream.read_exact(&mut back))
        .await
        .expect("the echo within the deadline")
        .expect("the echo");
    back
}

/// Waits (at most [`PROMPTLY`]) for the router to close `stream`: end of input, or a reset.
async fn closed_promptly(stream: &mut TcpStream) -> Result<(), String> {
    let mut buffer = [0; 64];
    match tokio::time::timeout(PROMPTLY, stream.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => Ok(()),
        Ok(Ok(n)) => Err(format!(
            "got {:?} instead",
            String::from_utf8_lossy(&buffer[..n])
        )),
        Err(_) => Err(format!("still open after {PROMPTLY:?}")),
    }
}

/// Bytes that are not all alike (xorshift), so that a lost or reordered chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_pass_both_ways_intact_and_a_half_close_finishes_cleanly() {
    let relay = Relay::start(8, Duration::from_secs(1)).await;
    relay.builder(echo_builder("builder-a").await).await;
    let stream = relay.connect_to("builder-a").await;
    let data = pattern(6 << 20);
    let (mut read, mut write) = stream.into_split();
    let sent = data.clone();
    let sending = tokio::spawn(async move {
        write.write_all(&sent).await.expect("send");
        // Done sending, as git is when its pack is sent; the answer is still to come.
        write.shutdown().await.expect("half-close");
        write
    });
    let mut echoed = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), read.read_to_end(&mut echoed))
        .await
        .expect("the whole echo and the builder's close within 30 s")
        .expect("read the echo");
    let _write = sending.await.expect("sent");
    assert_eq!(echoed.len(), data.len(), "every byte came back");
    assert!(echoed == data, "the bytes came back intact and in order");
    relay
        .counted("deis_router_builder_connections_total{outcome=\"relayed\"} 1")
        .await;
    relay
        .counted(&format!(
            "deis_router_builder_bytes_total{{direction=\"to_builder\"}} {}",
            data.len()
        ))
        .await;
    relay
        .counted("deis_router_builder_connections_open 0")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_builder_takes_new_connections_while_open_ones_stay() {
    let relay = Relay::start(8, Duration::from_secs(1)).await;
    relay.builder(echo_builder("builder-a").await).await;
    let mut old = relay.connect_to("builder-a").await;
    assert_eq!(
        round_trip(&mut old, b"before the move").await,
        b"before the move"
    );

    relay.builder(echo_builder("builder-b").await).await;
    let mut new = relay.connect_to("builder-b").await;
    assert_eq!(
        round_trip(&mut new, b"to the new one").await,
        b"to the new one"
    );
    // The connection opened before the move still talks to the first builder: it greeted as
    // builder-a and still echoes.
    assert_eq!(
        round_trip(&mut old, b"after the move").await,
        b"after the move"
    );
    relay
        .counted("deis_router_builder_connections_open 2")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_builder_to_reach_the_connection_is_closed_at_once() {
    let relay = Relay::start(8, Duration::from_secs(1)).await;
    // Nothing registered yet.
    let mut stream = TcpStream::connect(relay.port).await.expect("connect");
    closed_promptly(&mut stream).await.expect("closed");
    relay
        .counted("deis_router_builder_connections_total{outcome=\"no_builder\"} 1")
        .await;

    // A builder registered where nothing listens (it died): refused, closed at once too.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    relay.builder(gone).await;
    eventually(Duration::from_secs(10), "a refused builder", || async {
        let mut stream = TcpStream::connect(relay.port)
            .await
            .map_err(|e| e.to_string())?;
        closed_promptly(&mut stream).await?;
        let metrics = relay.metrics().await;
        if metrics.contains("deis_router_builder_connections_total{outcome=\"connect_failed\"}") {
            Ok(())
        } else {
            Err("not yet relayed to the registered builder".to_owned())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let relay = Relay::start(2, Duration::from_secs(1)).await;
    relay.builder(echo_builder("builder-a").await).await;
    let first = relay.connect_to("builder-a").await;
    let mut second = relay.connect_to("builder-a").await;
    let mut third = TcpStream::connect(relay.port).await.expect("connect");
    closed_promptly(&mut third)
        .await
        .expect("the third connection is closed");
    relay
        .counted("deis_router_builder_connections_total{outcome=\"over_limit\"} 1")
        .await;
    assert_eq!(round_trip(&mut second, b"still here").await, b"still here");

    // Once one closes, its place is free.
    drop(first);
    let mut again = relay.connect_to("builder-a").await;
    assert_eq!(
        round_trip(&mut again, b"in its place").await,
        b"in its place"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_builder_timeout() {
    let relay = Relay::start(8, Duration::from_secs(1)).await;
    // Deis's key, in milliseconds.
    relay
        .store
        .put("/deis/router/builder/timeout/tcp", "400", None)
        .await
        .expect("store put");
    relay.builder(echo_builder("builder-a").await).await;
    // The setting was written first, so the table that has the builder has it too.
    let mut stream = relay.connect_to("builder-a").await;
    let started = tokio::time::Instant::now();
    let mut buffer = [0; 16];
    let outcome = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
    assert!(
        matches!(outcome, Ok(Ok(0) | Err(_))),
        "closed, not {outcome:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before it was idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_open_connections_finish_within_the_drain_then_closes_them() {
    let mut relay = Relay::start(8, Duration::from_secs(2)).await;
    relay.builder(echo_builder("builder-a").await).await;
    let mut open = relay.connect_to("builder-a").await;
    relay.shutdown.cancel();
    // New connections are no longer taken...
    eventually(Duration::from_secs(5), "the listener to close", || async {
        match TcpStream::connect(relay.port).await {
            Err(_) => Ok(()),
            Ok(_) => Err("still accepting".to_owned()),
        }
    })
    .await;
    // ...while the open one still works during the drain...
    assert_eq!(round_trip(&mut open, b"draining").await, b"draining");
    // ...and is closed when the drain period is over, the router then stopping.
    let mut buffer = [0; 16];
    let outcome = tokio::time::timeout(Duration::from_secs(10), open.read(&mut buffer)).await;
    assert!(
        matches!(outcome, Ok(Ok(0) | Err(_))),
        "closed, not {outcome:?}"
    );
    let stopped = relay.stopped.take().expect("running");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the router stops after the drain")
        .expect("the router task");
}

/// Runs `command`, at most 60 s: its exit status, stdout and stderr.
async fn output(command: &mut tokio::process::Command) -> (bool, String, String) {
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command ends within 60 s")
        .expect("the command runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_and_git_reach_the_real_builder_through_the_router() {
    let relay = Relay::start(8, Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().expect("dir");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = deis_builder::Config {
        ssh_listen: loopback,
        http_listen: loopback,
        data_dir: dir.path().join("builder"),
        ..deis_builder::Config::default()
    };
    let listeners = deis_builder::Listeners::bind(&config).await.expect("bind");
    let direct = listeners.ssh.local_addr().expect("addr");
    // The builder registers itself in the same etcd, as on a cluster.
    let builder = tokio::spawn(deis_builder::run(
        config,
        relay.store.clone(),
        listeners,
        relay.shutdown.child_token(),
    ));

    // The host key seen through the router is the builder's own.
    let keyscan = deis_testkit::require("ssh-keyscan", "openssh-client");
    let host_key = |port: u16| {
        let keyscan = keyscan.clone();
        async move {
            let mut command = tokio::process::Command::new(&keyscan);
            command.args(["-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"]);
            let (_, out, err) = output(&mut command).await;
            out.split_whitespace()
                .nth(2)
                .map(str::to_owned)
                .ok_or(format!("{out}{err}"))
        }
    };
    let builders_key = eventually(Duration::from_secs(20), "the builder's host key", || {
        host_key(direct.port())
    })
    .await;
    let relayed_key = eventually(
        Duration::from_secs(20),
        "the host key through the router",
        || host_key(relay.port.port()),
    )
    .await;
    assert_eq!(relayed_key, builders_key);

    // A whole SSH session through the router: key exchange, public-key authentication and a
    // command, Deis's health check.
    let key = dir.path().join("id_ed25519");
    let keygen = deis_testkit::require("ssh-keygen", "openssh-client");
    let mut command = tokio::process::Command::new(keygen);
    command
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key);
    assert!(output(&mut command).await.0, "ssh-keygen");
    let ssh = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        key.display()
    );
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{ssh} -p {} git@127.0.0.1 ping", relay.port.port()));
    let (ok, out, err) = output(&mut command).await;
    assert!(ok && out == "pong\n", "ssh ping: {out}{err}");

    // `git push` talks to the builder through the router: with no controller to say whose key
    // this is, the builder's own refusal comes back to git.
    let git = deis_testkit::require("git", "git");
    let repo = dir.path().join("app");
    std::fs::create_dir(&repo).expect("mkdir");
    for args in [
        &["init", "-q"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
    ] {
        let mut command = tokio::process::Command::new(&git);
        command.args(args).current_dir(&repo);
        assert!(output(&mut command).await.0, "git {args:?}");
    }
    let mut command = tokio::process::Command::new(&git);
    command
        .args([
            "push",
            &format!("ssh://git@127.0.0.1:{}/app.git", relay.port.port()),
            "HEAD:master",
        ])
        .current_dir(&repo)
        .env("GIT_SSH_COMMAND", &ssh);
    let (ok, out, err) = output(&mut command).await;
    assert!(!ok, "the push is refused: {out}{err}");
    assert!(
        err.contains("The builder cannot check your key"),
        "the builder's answer reached git: {err}"
    );

    relay.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), builder).await;
}
