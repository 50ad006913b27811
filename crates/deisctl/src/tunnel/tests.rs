//! The tunnel against Debian's OpenSSH server: forwards, commands, host keys, logins, hops and
//! lost connections, as an operator meets them.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deis_testkit::{ServiceProcess, SshKeyPair, Sshd, eventually, require};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::*;

fn spec(sshd: &Sshd) -> TunnelSpec {
    TunnelSpec::new(
        sshd.user(),
        &sshd.addr().ip().to_string(),
        sshd.addr().port(),
    )
}

fn options(sshd: &Sshd) -> SshOptions {
    SshOptions {
        known_hosts_file: sshd.known_hosts_file(),
        strict_host_key_checking: true,
        timeout: Duration::from_secs(10),
        identity: Some(sshd.client_key().to_owned()),
    }
}

/// A tunnel to `sshd` with its client key and no ssh-agent (a developer's agent stays out).
async fn connect(sshd: &Sshd) -> Tunnel {
    Tunnel::connect_with_agent(&spec(sshd), &options(sshd), None)
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd:\n{}", sshd.output()))
}

/// The error of a connection that must fail.
async fn refused(spec: &TunnelSpec, options: &SshOptions, agent: Option<PathBuf>) -> String {
    match Tunnel::connect_with_agent(spec, options, agent).await {
        Ok(_) => panic!("{spec} let us in with {options:?}"),
        Err(e) => e.to_string(),
    }
}

/// A TCP server on loopback that sends back what it receives, then closes.
async fn tcp_echo() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A unix-socket server that sends back what it receives, then closes.
fn unix_echo(path: &Path) -> JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    })
}

/// `len` bytes that differ from one position to the next.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` through a connection while reading what comes back, to the end.
async fn round_trip<S>(stream: S, data: Vec<u8>) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.expect("send");
        w.shutdown().await.expect("end of input");
    });
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut back))
        .await
        .expect("the echo ends")
        .expect("read the echo");
    writer.await.expect("writer");
    back
}

#[tokio::test]
async fn forward_tcp_reaches_a_server_on_the_far_side_for_several_connections_at_once() {
    let sshd = Sshd::start().await;
    let (echo, _server) = tcp_echo().await;
    let tunnel = connect(&sshd).await;
    let forward = tunnel
        .forward_tcp("127.0.0.1", echo.port())
        .await
        .expect("forward");
    assert_eq!(forward.endpoint(), &LocalEndpoint::Tcp(forward.addr()));
    assert!(forward.addr().ip().is_loopback());
    assert_ne!(forward.addr().port(), echo.port());
    let clients: Vec<_> = (0..8u64)
        .map(|i| {
            let addr = forward.addr();
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.expect("connect");
                let data = pattern(100_000 + i as usize, i + 1);
                (round_trip(stream, data.clone()).await, data)
            })
        })
        .collect();
    for client in clients {
        let (back, sent) = client.await.expect("client");
        assert_eq!(back.len(), sent.len());
        assert!(back == sent, "the echo differs from what was sent");
    }
    assert_eq!(forward.last_error(), None);
}

#[tokio::test]
async fn forward_unix_carries_a_large_transfer_intact_through_a_private_socket() {
    let sshd = Sshd::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let remote = dir.path().join("docker.sock");
    let _server = unix_echo(&remote);
    let tunnel = connect(&sshd).await;
    let forward = tunnel
        .forward_unix(&remote.display().to_string())
        .await
        .expect("forward");
    let local = forward.path().to_owned();
    let mode = local
        .parent()
        .and_then(|d| d.metadata().ok())
        .map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode, Some(0o700), "the socket's directory is private");

    let data = pattern(6 << 20, 42);
    let stream = UnixStream::connect(&local).await.expect("connect");
    let back = round_trip(stream, data.clone()).await;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "6 MiB came back changed");

    drop(forward);
    eventually(
        Duration::from_secs(5),
        "the dropped forward's socket to go",
        || {
            let local = local.clone();
            async move {
                match UnixStream::connect(&local).await {
                    Ok(_) => Err("still accepts".to_owned()),
                    Err(_) => Ok(()),
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn exec_returns_stdout_stderr_and_the_exit_status() {
    let sshd = Sshd::start().await;
    let tunnel = connect(&sshd).await;
    let out = tunnel
        .exec("sh -c 'echo out; echo err >&2; exit 3'")
        .await
        .expect("exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status, 3);
    assert!(!out.success());
    assert!(!out.truncated);

    let out = tunnel.exec("kill -TERM $$").await.expect("exec");
    assert_eq!((out.status, out.signal.as_deref()), (143, Some("TERM")));

    let out = tunnel.exec("true").await.expect("exec");
    assert!(out.success());
}

#[tokio::test]
async fn exec_with_stdin_streams_the_input_and_exec_bounds_the_output() {
    let sshd = Sshd::start().await;
    let tunnel = connect(&sshd).await;
    let input = pattern(3 << 20, 7);
    let out = tunnel
        .exec_with_stdin("cat", &input[..])
        .await
        .expect("exec");
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == input, "3 MiB of input came back changed");

    let limit = exec::OUTPUT_LIMIT;
    let out = tunnel
        .exec(&format!("head -c {} /dev/zero", limit + 1000))
        .await
        .expect("exec");
    assert!(out.success());
    assert!(out.truncated);
    assert!(out.stdout[..limit].iter().all(|b| *b == 0));
    let note = String::from_utf8_lossy(&out.stdout[limit..]).into_owned();
    assert!(note.contains("1000 more bytes cut after 16 MiB"), "{note}");
}

#[tokio::test]
async fn strict_checking_refuses_an_unknown_host_key_and_says_what_to_do() {
    let sshd = Sshd::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let known_hosts = dir.path().join("known_hosts");
    let options = SshOptions {
        known_hosts_file: known_hosts.clone(),
        ..options(&sshd)
    };
    let e = refused(&spec(&sshd), &options, None).await;
    let port = sshd.addr().port();
    let keyscan = format!(
        "ssh-keyscan -p {port} 127.0.0.1 >> {}",
        known_hosts.display()
    );
    assert!(e.contains(&keyscan), "{e}");
    assert!(e.contains("--strict-host-key-checking=false"), "{e}");
    assert!(e.contains("SHA256:"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");

    sshd.write_known_hosts(&known_hosts);
    let tunnel = Tunnel::connect_with_agent(&spec(&sshd), &options, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tunnel.exec("true").await.expect("exec").success());

    let lax = SshOptions {
        known_hosts_file: dir.path().join("absent"),
        strict_host_key_checking: false,
        ..options
    };
    let tunnel = Tunnel::connect_with_agent(&spec(&sshd), &lax, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tunnel.exec("true").await.expect("exec").success());
}

#[tokio::test]
async fn a_changed_host_key_is_refused_even_without_strict_checking() {
    let sshd = Sshd::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let known_hosts = dir.path().join("known_hosts");
    let impostor = SshKeyPair::generate();
    std::fs::write(
        &known_hosts,
        format!(
            "# another host\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n[127.0.0.1]:{} {}\n",
            sshd.addr().port(),
            impostor.public_key()
        ),
    )
    .expect("write known_hosts");
    for strict in [true, false] {
        let options = SshOptions {
            known_hosts_file: known_hosts.clone(),
            strict_host_key_checking: strict,
            ..options(&sshd)
        };
        let e = refused(&spec(&sshd), &options, None).await;
        assert!(e.contains("has CHANGED"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(
            e.contains(&format!(
                "ssh-keygen -f {} -R '[127.0.0.1]:{}'",
                known_hosts.display(),
                sshd.addr().port()
            )),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_key_the_server_does_not_accept_is_refused_with_an_authentication_error() {
    let sshd = Sshd::start().await;
    let stranger = SshKeyPair::generate();
    let options = SshOptions {
        identity: Some(stranger.private_key().to_owned()),
        ..options(&sshd)
    };
    let e = refused(&spec(&sshd), &options, None).await;
    assert!(
        e.contains(&format!("authentication as {} failed", spec(&sshd))),
        "{e}"
    );
    assert!(
        e.contains(&stranger.private_key().display().to_string()),
        "{e}"
    );
    assert!(e.contains("authorized_keys"), "{e}");

    let options = SshOptions {
        identity: Some(PathBuf::from("/nonexistent/id_ed25519")),
        ..options
    };
    let e = refused(&spec(&sshd), &options, None).await;
    assert!(e.contains("cannot read key /nonexistent/id_ed25519"), "{e}");
}

#[tokio::test]
async fn the_ssh_agent_logs_in_when_no_identity_is_given() {
    let sshd = Sshd::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new(require("ssh-agent", "openssh-client"));
    agent.arg("-D").arg("-a").arg(&socket);
    let _agent = ServiceProcess::spawn("ssh-agent", agent, &dir.path().join("agent.log"));
    eventually(Duration::from_secs(10), "ssh-agent's socket", || {
        let exists = socket.exists();
        async move {
            if exists {
                Ok(())
            } else {
                Err("absent".to_owned())
            }
        }
    })
    .await;
    let added = Command::new(require("ssh-add", "openssh-client"))
        .env("SSH_AUTH_SOCK", &socket)
        .arg(sshd.client_key())
        .output()
        .expect("run ssh-add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // Only the agent holds the key: the identity offered is another one.
    let stranger = SshKeyPair::generate();
    let options = SshOptions {
        identity: Some(stranger.private_key().to_owned()),
        ..options(&sshd)
    };
    let tunnel = Tunnel::connect_with_agent(&spec(&sshd), &options, Some(socket.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd:\n{}", sshd.output()));
    assert!(tunnel.exec("true").await.expect("exec").success());

    let e = refused(
        &spec(&sshd),
        &options,
        Some(dir.path().join("no-agent.sock")),
    )
    .await;
    assert!(e.contains("no ssh-agent at"), "{e}");
}

#[tokio::test]
async fn jump_reaches_a_host_through_the_tunnel_host_with_the_same_rules() {
    let sshd = Sshd::start().await;
    let tunnel = connect(&sshd).await;
    let hop = tunnel.jump(&spec(&sshd)).await.expect("jump");
    drop(tunnel); // the hop keeps the connection it runs through
    let out = hop.exec("echo $SSH_CONNECTION").await.expect("exec");
    assert!(out.success());
    // The second login came through the first connection: its client is sshd's own end.
    let client = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(client.starts_with("127.0.0.1 "), "{client}");
    assert_eq!(
        sshd.output().matches("Accepted publickey").count(),
        2,
        "{}",
        sshd.output()
    );

    // known_hosts knows 127.0.0.1, not `localhost`.
    let tunnel = connect(&sshd).await;
    let by_name = TunnelSpec::new(sshd.user(), "localhost", sshd.addr().port());
    let e = match tunnel.jump(&by_name).await {
        Ok(_) => panic!("an unknown host key let us in"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(&format!("ssh-keyscan -p {} localhost", sshd.addr().port())),
        "{e}"
    );
}

#[tokio::test]
async fn a_lost_connection_ends_forwarded_connections_with_an_error_not_a_hang() {
    let sshd = Sshd::start().await;
    let (echo, _server) = tcp_echo().await;
    let tunnel = connect(&sshd).await;
    let forward = tunnel
        .forward_tcp("127.0.0.1", echo.port())
        .await
        .expect("forward");
    let mut conn = TcpStream::connect(forward.addr()).await.expect("connect");
    conn.write_all(b"ping").await.expect("send");
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"ping");

    assert!(sshd.drop_connections() > 0);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut rest))
        .await
        .expect("the forwarded connection ends instead of hanging");
    assert!(read.is_err(), "an error, not a clean end: {read:?}");

    eventually(Duration::from_secs(5), "the forward to say why", || {
        let last = forward.last_error();
        async move {
            match last {
                Some(e) if e.contains("was lost") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert!(tunnel.is_closed());
    let e = match tunnel.exec("true").await {
        Ok(out) => panic!("exec on a lost connection: {out:?}"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("was lost"), "{e}");
}

#[tokio::test]
async fn a_far_end_that_refuses_resets_the_local_connection_and_the_forward_says_why() {
    let sshd = Sshd::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let tunnel = connect(&sshd).await;
    let forward = tunnel
        .forward_tcp("127.0.0.1", closed)
        .await
        .expect("forward");
    let mut conn = TcpStream::connect(forward.addr()).await.expect("connect");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest))
        .await
        .expect("the local connection ends");
    assert!(read.is_err(), "{read:?}");
    let e = forward.last_error().unwrap_or_default();
    assert!(
        e.contains(&format!("cannot open 127.0.0.1:{closed}")),
        "{e}"
    );
    // The tunnel itself is fine.
    assert!(tunnel.exec("true").await.expect("exec").success());
}

#[tokio::test]
async fn a_host_that_does_not_answer_fails_within_the_ssh_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("address").port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let options = SshOptions {
        timeout: Duration::from_millis(300),
        identity: None,
        ..SshOptions::default()
    };
    let started = std::time::Instant::now();
    let e = refused(&TunnelSpec::new("core", "127.0.0.1", port), &options, None).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.contains("--ssh-timeout"), "{e}");
    assert!(e.contains(&format!("core@127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn dropping_a_forward_ends_its_connections_on_both_sides() {
    let sshd = Sshd::start().await;
    let far = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = far.local_addr().expect("address").port();
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let _server = tokio::spawn(async move {
        let (mut stream, _) = far.accept().await.expect("accept");
        stream.write_all(b"hello").await.expect("greet");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        let _ = ended_tx.send(());
    });
    let tunnel = connect(&sshd).await;
    let forward = tunnel
        .forward_tcp("127.0.0.1", port)
        .await
        .expect("forward");
    let addr = forward.addr();
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let mut hello = [0u8; 5];
    conn.read_exact(&mut hello).await.expect("greeting");
    assert_eq!(&hello, b"hello");

    drop(forward);
    tokio::time::timeout(Duration::from_secs(10), ended_rx)
        .await
        .expect("the far side's connection ends")
        .expect("the server says so");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest))
        .await
        .expect("the local connection ends");
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    // The tunnel itself stays.
    assert!(tunnel.exec("true").await.expect("exec").success());
}
