//! The processes of the router bench: the references (nginx, HAProxy), wrk and its figures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deis_testkit::{ServiceProcess, require};

pub(crate) use deis_testkit::wrk::WrkRun as Run;

/// A process stopped with SIGTERM (nginx's master then stops its workers, which a SIGKILL of
/// the master would leave running), killed only if it does not exit within 5 s.
pub(crate) struct Stopped(pub(crate) ServiceProcess);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.terminate();
        if self.0.wait_exit(Duration::from_secs(5)).is_none() {
            self.0.kill();
        }
    }
}

/// A shell line run with a high file descriptor limit (1000 connections and more need it).
pub(crate) fn sh(line: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -n \"$(ulimit -Hn)\"; exec {line}"));
    c
}

/// nginx in the foreground with `body` as its configuration after the common lines.
pub(crate) fn nginx(dir: &Path, name: &str, body: &str) -> Stopped {
    let conf = dir.join(format!("{name}.conf"));
    let config = format!(
        "daemon off;\nworker_rlimit_nofile 65536;\npid {pid};\nerror_log {dir}/{name}-error.log warn;\n{body}",
        pid = dir.join(format!("{name}.pid")).display(),
        dir = dir.display(),
    );
    std::fs::write(&conf, config).expect("write nginx config");
    let nginx = require("nginx", "nginx");
    let line = format!(
        "{} -p {} -c {}",
        nginx.display(),
        dir.display(),
        conf.display()
    );
    Stopped(ServiceProcess::spawn(
        name,
        sh(&line),
        &dir.join(format!("{name}.log")),
    ))
}

/// nginx's temporary directories inside `dir`.
pub(crate) fn temp_paths(dir: &Path) -> String {
    let t = |n: &str| dir.join(n).display().to_string();
    format!(
        "client_body_temp_path {}; proxy_temp_path {}; fastcgi_temp_path {}; uwsgi_temp_path {}; scgi_temp_path {};",
        t("body"),
        t("proxy"),
        t("fastcgi"),
        t("uwsgi"),
        t("scgi")
    )
}

/// HAProxy with `haproxy.cfg` (next to this bench), its placeholders filled in.
pub(crate) fn haproxy(
    dir: &Path,
    listen: SocketAddr,
    tls_listen: SocketAddr,
    pem: &Path,
    upstream: SocketAddr,
) -> Stopped {
    let template = include_str!("../haproxy.cfg");
    let config = template
        .replace("{listen}", &listen.to_string())
        .replace("{tls_listen}", &tls_listen.to_string())
        .replace("{pem}", &pem.display().to_string())
        .replace("{upstream}", &upstream.to_string());
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, config).expect("write haproxy config");
    let haproxy = require("haproxy", "haproxy");
    // -db: foreground; -W off: no master process.
    let line = format!("{} -db -f {}", haproxy.display(), conf.display());
    Stopped(ServiceProcess::spawn(
        "haproxy",
        sh(&line),
        &dir.join("haproxy.log"),
    ))
}

/// `wrk -t2` for `duration` at `connections` on `url`, with `Host: host` and `extra` header.
pub(crate) fn wrk(url: &str, host: &str, connections: usize, duration: &str, extra: &str) -> Run {
    let header = if extra.is_empty() {
        String::new()
    } else {
        format!("-H '{extra}'")
    };
    deis_testkit::wrk::wrk(&format!(
        "-c{connections} -d{duration} -H 'Host: {host}' {header} {url}"
    ))
}

/// `pid` and its children (nginx's workers), and theirs.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut all = Vec::new();
    while let Some(p) = pids.pop() {
        all.push(p);
        let children = PathBuf::from(format!("/proc/{p}/task/{p}/children"));
        let children = std::fs::read_to_string(children).unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    all
}

/// The resident memory of `pid` and its children (nginx's workers), in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    tree(pid)
        .iter()
        .map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// CPU time spent by `pid` and its children so far, in user and in kernel mode (clock ticks).
pub(crate) fn cpu_ticks(pid: u32) -> (u64, u64) {
    tree(pid).iter().fold((0, 0), |(user, sys), p| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // The fields after the command's closing parenthesis; utime and stime are 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (user + field(11), sys + field(12))
    })
}
