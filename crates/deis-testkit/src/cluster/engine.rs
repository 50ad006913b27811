//! One host's Docker engine: a `dockerd` in the host's network namespace with a UTS namespace
//! of its own (for its host name), its own configuration, data, state, socket and cgroups.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::ServiceProcess;

/// The storage driver of the hosts' engines. `overlay2` works here (the kernel has overlayfs and
/// the scratch folder is on ext4); `vfs` would copy every image per container.
const STORAGE_DRIVER: &str = "overlay2";

/// What a host's engine needs to start.
pub(super) struct EngineSpec<'a> {
    pub(super) hostname: &'a str,
    pub(super) netns: &'a str,
    /// Scratch folder: `daemon.json`, `data/`, `dockerd.log`.
    pub(super) dir: &'a Path,
    /// Short folder under `/run`; its `run/` is the host's `/run` (`docker.sock`, `docker.pid`,
    /// `docker/`, `sshd/`).
    pub(super) run_dir: &'a Path,
    /// The `cgroup.procs` file the engine moves itself into before it starts.
    pub(super) engine_cgroup_procs: &'a Path,
    /// The engine's `--cgroup-parent`, for its containers.
    pub(super) cgroup_parent: &'a str,
}

/// Starts the engine; returns its process (whose PID is `dockerd`'s: `nsenter`, `unshare` and
/// `sh` each exec the next).
pub(super) fn spawn(spec: &EngineSpec<'_>) -> ServiceProcess {
    let config = spec.dir.join("daemon.json");
    // The fixture kills the containers itself when it stops an engine, so the engine need not
    // wait long for them.
    std::fs::write(
        &config,
        format!(
            "{{\"storage-driver\": \"{STORAGE_DRIVER}\", \"log-driver\": \"json-file\", \
             \"shutdown-timeout\": 2}}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
    // The host's own `/run` (so `/var/run/docker.sock` is this host's engine, for what mounts
    // it and for SSH sessions that join the engine's mount namespace): a private mount
    // namespace with `<run_dir>/run` bound on `/run`.
    let run = spec.run_dir.join("run");
    for dir in ["sshd", "lock"] {
        std::fs::create_dir_all(run.join(dir))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", run.join(dir).display()));
    }
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{}", spec.netns))
        .args([
            "--",
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(
            "set -e; echo $$ > \"$1\"; hostname \"$2\"; mount --bind \"$3\" /run; \
             shift 3; exec \"$@\"",
        )
        .arg("sh")
        .arg(spec.engine_cgroup_procs)
        .arg(spec.hostname)
        .arg(&run)
        .arg("dockerd")
        .arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(spec.dir.join("data"))
        .arg("--exec-root")
        .arg("/run/docker")
        .arg("--pidfile")
        .arg("/run/docker.pid")
        .arg("-H")
        .arg("unix:///run/docker.sock")
        .arg("--cgroup-parent")
        .arg(spec.cgroup_parent);
    ServiceProcess::spawn(
        &format!("dockerd of {}", spec.hostname),
        command,
        &spec.dir.join("dockerd.log"),
    )
}

/// Waits until the engine at `docker_host` answers; panics with its log if it exits or
/// `timeout` passes.
pub(super) async fn wait_ready(
    process: &mut ServiceProcess,
    docker_host: &str,
    hostname: &str,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        process.assert_running();
        let out = tokio::process::Command::new("docker")
            .args(["-H", docker_host, "info", "--format", "{{.Driver}}"])
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
        let driver = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // An engine still starting may answer `info` before it names its driver.
        if out.status.success() && !driver.is_empty() {
            assert_eq!(
                driver,
                STORAGE_DRIVER,
                "the engine of {hostname} runs another storage driver; its log:\n{}",
                process.output()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the Docker engine of {hostname} did not answer within {timeout:?}; its log:\n{}",
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A mount point from `/proc/self/mountinfo`, with its octal escapes (`\040` for a space)
/// decoded.
pub(super) fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points at or under any of `roots`, in the order they were mounted.
pub(super) fn mounts_under(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|mount| roots.iter().any(|root| mount.starts_with(root)))
        .collect()
}

/// Detaches every mount at or under `roots`, the latest first, until none is left or `timeout`
/// passes; whether none is left.
pub(super) fn unmount_all(roots: &[PathBuf], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mounts = mounts_under(roots);
        if mounts.is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        for mount in mounts.iter().rev() {
            let _ = nix::mount::umount2(mount, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
