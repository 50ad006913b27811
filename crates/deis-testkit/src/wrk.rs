//! The `wrk` load generator for benchmarks: one run and the figures it prints.

use std::process::Command;

use crate::require;

/// One wrk run's figures. `errors` counts non-2xx/3xx answers and socket errors.
#[derive(Debug, Default, Clone, Copy)]
pub struct WrkRun {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub requests: u64,
}

/// `wrk -t2 --latency <args>` (connections, duration, headers and URL in `args`, as a shell
/// would split them), with the highest file descriptor limit allowed (1000 connections and
/// more need it). Panics with wrk's output when it cannot be read.
pub fn wrk(args: &str) -> WrkRun {
    let wrk = require("wrk", "wrk");
    let line = format!(
        "ulimit -n \"$(ulimit -Hn)\"; exec {} -t2 --latency {args}",
        wrk.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse(&text).unwrap_or_else(|| {
        panic!(
            "cannot read wrk's output:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A wrk duration (`812.00us`, `3.21ms`, `1.02s`, `1.00m`) in milliseconds.
fn ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = value.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// The figures in wrk's `--latency` output; `None` without a request rate.
pub fn parse(text: &str) -> Option<WrkRun> {
    let mut run = WrkRun::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => run.rps = v.parse().ok()?,
            ["50%", v] => run.p50_ms = ms(v)?,
            ["99%", v] => run.p99_ms = ms(v)?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for pair in rest.chunks(2) {
                    if let [_, n] = pair {
                        run.errors += n.trim_end_matches(',').parse::<u64>().ok()?;
                    }
                }
            }
            _ => {}
        }
    }
    (run.rps > 0.0).then_some(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_figures_wrk_prints() {
        let text = "Running 8s test @ http://127.0.0.1:8080/\n  2 threads and 50 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     90%    1.50ms\n     99%    3.21ms\n  254011 requests in 8.00s, 40.21MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  31751.37\nTransfer/sec:      5.03MB\n";
        let run = parse(text).expect("figures");
        assert_eq!(run.requests, 254_011);
        assert_eq!(run.errors, 7);
        assert!((run.p50_ms - 0.812).abs() < 1e-9 && (run.p99_ms - 3.21).abs() < 1e-9);
        assert!((run.rps - 31_751.37).abs() < 1e-6);
        assert!(parse("connection refused").is_none());
    }
}
