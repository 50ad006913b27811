//! The cgroups of one simulated host, `/<group>` in every hierarchy: its `dockerd` (and so its
//! containerd and container shims) in `<group>/engine` of one tracking hierarchy, its containers
//! in `<group>/containers/<id>` (the engine's `--cgroup-parent`) of every hierarchy. Killing
//! everything in `<group>` stops the host; nothing outside it is ever signalled.
//!
//! The engine is moved only in a hierarchy that limits nothing (`pids` on cgroup v1): its
//! memory and CPU stay accounted where the test process is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The root folder of every mounted cgroup hierarchy (one per controller on cgroup v1, one in
/// all on v2).
pub(super) fn hierarchies() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(super::engine::unescape_mount_path(mount_point)))
        })
        .collect()
}

/// The hierarchy `dockerd` is moved into: one without limits.
fn tracking_hierarchy() -> PathBuf {
    let v2 = Path::new("/sys/fs/cgroup");
    if v2.join("cgroup.controllers").exists() {
        return v2.to_owned();
    }
    ["pids", "systemd", "freezer"]
        .iter()
        .map(|name| v2.join(name))
        .find(|p| p.join("cgroup.procs").exists())
        .unwrap_or_else(|| {
            panic!("no cgroup hierarchy to track a Docker engine in (looked for pids, systemd and freezer under /sys/fs/cgroup)")
        })
}

/// Creates `<group>/engine` in the tracking hierarchy and returns its `cgroup.procs` file, for
/// the engine's start script to move itself into.
pub(super) fn create_engine_group(group: &str) -> PathBuf {
    let dir = tracking_hierarchy().join(group).join("engine");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot create the cgroup {} (this needs root): {e}",
            dir.display()
        )
    });
    dir.join("cgroup.procs")
}

/// The processes in `<group>/<sub>` (or all of `<group>`), in any hierarchy, deepest folders
/// included.
pub(super) fn processes(group: &str, sub: Option<&str>) -> BTreeSet<i32> {
    let mut pids = BTreeSet::new();
    for root in hierarchies() {
        let mut dir = root.join(group);
        if let Some(sub) = sub {
            dir.push(sub);
        }
        collect_processes(&dir, &mut pids);
    }
    pids.remove(&std::process::id().cast_signed());
    pids
}

fn collect_processes(dir: &Path, pids: &mut BTreeSet<i32>) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for child in subfolders(dir) {
        collect_processes(&child, pids);
    }
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends SIGKILL to every process in `<group>/<sub>` (or all of `<group>`) once.
pub(super) fn kill_once(group: &str, sub: Option<&str>) -> usize {
    let pids = processes(group, sub);
    for pid in &pids {
        // A process may be gone already; that is what we want.
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    pids.len()
}

/// Kills every process in `<group>` until none is left or `timeout` passes; whether it emptied.
pub(super) fn kill_all(group: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if kill_once(group, None) == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `<group>` and its subfolders from every hierarchy, retrying while the kernel still
/// counts exiting processes in them; whether all are gone.
pub(super) fn remove(group: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|root| root.join(group))
            .filter(|dir| dir.exists())
            .collect();
        for dir in &left {
            remove_tree(dir);
        }
        if left.iter().all(|dir| !dir.exists()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_tree(dir: &Path) {
    for child in subfolders(dir) {
        remove_tree(&child);
    }
    // A cgroup folder is removed with rmdir (its files are not real files).
    let _ = std::fs::remove_dir(dir);
}
