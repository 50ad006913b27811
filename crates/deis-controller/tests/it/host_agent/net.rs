//! What the host agent test does on the simulated hosts: listeners bound inside a host's
//! network namespace (standing for the platform's ports there), etcd on a host, and connection
//! attempts from inside an app container, told apart as answered, refused or timed out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deis_store::{ConfigStore, EtcdStore};
use deis_testkit::{Cluster, ServiceProcess, eventually, require};
use tokio::io::AsyncWriteExt;

/// Runs `work` on a thread of its own inside the network namespace whose file is `netns`
/// (sockets it makes stay in that namespace).
pub(crate) fn in_netns<T: Send + 'static>(
    netns: &Path,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", netns.display()));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("cannot enter {}: {e}", netns.display()));
        work()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A TCP listener on `addr` in the network namespace whose file is `netns`, answering every
/// connection with `banner` and a newline, until the test ends.
pub(crate) fn serve_banner_in(netns: &Path, addr: SocketAddr, banner: &'static str) {
    let listener = in_netns(netns, move || {
        std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"))
    });
    serve_banner(listener, banner);
}

/// Answers every connection to `listener` with `banner` and a newline.
pub(crate) fn serve_banner(listener: std::net::TcpListener, banner: &'static str) {
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("cannot make the listener non-blocking: {e}"));
    let listener = tokio::net::TcpListener::from_std(listener)
        .unwrap_or_else(|e| panic!("cannot hand the listener to tokio: {e}"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(format!("{banner}\n").as_bytes()).await;
        }
    });
}

/// etcd on host `i`, listening on its address (port 2379), and a client of it; the process
/// is killed when dropped.
pub(crate) async fn etcd_on(cluster: &Cluster, i: usize) -> (ServiceProcess, Arc<dyn ConfigStore>) {
    let etcd = require("etcd", "etcd-server");
    let host = cluster.host(i);
    let client = format!("http://{}:2379", host.addr());
    let mut command = cluster.nsenter(i, etcd);
    command
        .args(["--name", "h", "--data-dir"])
        .arg(host.dir().join("etcd"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
        .args(["--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
        .args(["--initial-cluster", "h=http://127.0.0.1:2380"]);
    let mut process = ServiceProcess::spawn("etcd", command, &host.dir().join("etcd.log"));
    let store = eventually(Duration::from_secs(30), "etcd on h1", || {
        process.assert_running();
        let client = client.clone();
        async move {
            let store = EtcdStore::connect(&[client], "")
                .await
                .map_err(|e| e.to_string())?;
            store.list("/deis/").await.map_err(|e| e.to_string())?;
            Ok(store)
        }
    })
    .await;
    (process, Arc::new(store))
}

/// What a connection from inside an app container met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The listener's banner.
    Answered(String),
    /// A TCP reset.
    Refused,
    /// Nothing within 2 s (a dropped packet).
    TimedOut,
    /// Anything else (the output).
    Other(String),
}

/// Connects from inside `container` (on host `i`) to `target` with busybox `nc`.
pub(crate) async fn reach(
    cluster: &Cluster,
    i: usize,
    container: &str,
    target: SocketAddr,
) -> Reach {
    let script = format!(
        "nc -w 2 {} {} </dev/null 2>&1; echo exit=$?",
        target.ip(),
        target.port()
    );
    let out = tokio::process::Command::from(cluster.docker(i))
        .args(["exec", container, "sh", "-c", &script])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run docker exec: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if text.contains("Connection refused") {
        Reach::Refused
    } else if text.contains("timed out") {
        Reach::TimedOut
    } else if let Some(banner) = text.strip_suffix("exit=0") {
        Reach::Answered(banner.trim().to_owned())
    } else {
        Reach::Other(format!("{text} {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The network namespace file of a namespace made by `nsenter --net=<file>` commands (the
/// [`deis_testkit::Outside`]'s).
pub(crate) fn netns_of(command: &std::process::Command) -> Option<PathBuf> {
    command
        .get_args()
        .find_map(|arg| arg.to_str()?.strip_prefix("--net=").map(PathBuf::from))
}
