//! What each proxy spends per request under the same load (`costs`): system calls and context
//! switches (`perf stat` on the proxy's processes) and CPU time in user and kernel mode
//! (`/proc/<pid>/stat`), while wrk runs at 1000 keep-alive connections through it; and what
//! the upstream and the whole machine spent per request meanwhile (`/proc/stat`), the rest
//! being wrk's.

use std::path::Path;

use super::procs::{Run, cpu_ticks, sh, tree, wrk};

/// The kernel's clock ticks per second in `/proc/<pid>/stat` (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;
/// How long perf counts, inside wrk's run.
const COUNTED_SECONDS: f64 = 8.0;

/// One proxy's costs per request.
pub(crate) struct Costs {
    pub(crate) run: Run,
    pub(crate) syscalls: f64,
    pub(crate) switches: f64,
    pub(crate) user_us: f64,
    pub(crate) kernel_us: f64,
    /// The upstream's CPU time per request, user and kernel.
    pub(crate) upstream_us: f64,
    /// The machine's busy CPU time per request, every process.
    pub(crate) machine_us: f64,
}

/// Busy clock ticks of the whole machine so far: every CPU's time but idle and iowait.
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or_default();
    cpu.split_whitespace()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// Loads the proxy `pid` serving `url` for 10 s and counts what it and `upstream` spent.
pub(crate) fn measure(dir: &Path, pid: u32, upstream: u32, url: &str, host: &str) -> Costs {
    let pids: Vec<String> = tree(pid).iter().map(u32::to_string).collect();
    let out = dir.join(format!("perf-stat-{pid}.csv"));
    let perf = sh(&format!(
        "perf stat -x, -e raw_syscalls:sys_enter,context-switches -p {} -o {} -- sleep {COUNTED_SECONDS}",
        pids.join(","),
        out.display()
    ))
    .spawn()
    .expect("perf stat (apt-get install -y linux-perf)");
    let (user, kernel) = cpu_ticks(pid);
    let (up_user, up_kernel) = cpu_ticks(upstream);
    let machine = machine_ticks();
    let run = wrk(url, host, 1000, "10s", "");
    let (user_after, kernel_after) = cpu_ticks(pid);
    let (up_user_after, up_kernel_after) = cpu_ticks(upstream);
    let machine_after = machine_ticks();
    let _ = perf.wait_with_output();
    let counted = std::fs::read_to_string(&out).unwrap_or_default();
    let count = |event: &str| {
        counted
            .lines()
            .find(|l| l.split(',').nth(2) == Some(event))
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let requests_counted = run.rps * COUNTED_SECONDS;
    let requests = run.requests.max(1) as f64;
    let micros = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / requests;
    Costs {
        run,
        syscalls: count("raw_syscalls:sys_enter") / requests_counted,
        switches: count("context-switches") / requests_counted,
        user_us: micros(user_after.saturating_sub(user)),
        kernel_us: micros(kernel_after.saturating_sub(kernel)),
        upstream_us: micros((up_user_after + up_kernel_after).saturating_sub(up_user + up_kernel)),
        machine_us: micros(machine_after.saturating_sub(machine)),
    }
}
