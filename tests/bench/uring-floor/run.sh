#!/usr/bin/env bash
# The floor under any proxy on this machine: nginx (the router bench's reference, same
# configuration) against `uring-floor` (src/main.rs: the least a proxy does per request, on
# io_uring), the same upstream nginx, wrk -t2 at 100 and 1000 keep-alive connections, 8 s a
# run, alternating, two rounds; then what the floor spends per request (perf stat, /proc).
# Needs: apt-get install -y nginx wrk linux-perf. Usage: tests/bench/uring-floor/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for tool in nginx wrk perf; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y nginx wrk linux-perf" >&2; exit 1; }
done
(cd "$here" && cargo build --release --quiet)
floor="$here/target/release/uring-floor"
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=127.0.0.1:$(port); ng=127.0.0.1:$(port); fl=127.0.0.1:$(port)
temp="client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f; uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;"
common="daemon off; worker_rlimit_nofile 65536; error_log $dir/error.log warn;"
cat > "$dir/up.conf" <<C
$common pid $dir/up.pid; worker_processes 1; events { worker_connections 30000; }
http { access_log off; $temp keepalive_requests 1000000; server { listen $up backlog=4096; location / { return 200 "hello, world\n"; } } }
C
cat > "$dir/ng.conf" <<C
$common pid $dir/ng.pid; worker_processes 2; events { worker_connections 30000; }
http { access_log off; $temp keepalive_requests 1000000; upstream app { server $up; keepalive 512; }
 server { listen $ng backlog=4096; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto \$scheme; proxy_buffering off; } } }
C
nginx -p "$dir" -c "$dir/up.conf" & pids+=($!)
nginx -p "$dir" -c "$dir/ng.conf" & pids+=($!)
"$floor" "$fl" "$up" 2 & floor_pid=$!; pids+=($floor_pid)
for addr in $up $ng $fl; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://$addr/" && break; sleep 0.1; done
done
load() { # load <address> <connections>: requests/s p50 p99
  wrk -t2 -c"$2" -d8s --latency -H 'Host: bench.example.com' "http://$1/" |
    awk '/Requests\/sec/{r=$2} /^ +50%/{p50=$2} /^ +99%/{p99=$2} END{print r, p50, p99}'
}
echo "| connections | round | nginx requests/s (p50, p99) | floor requests/s (p50, p99) | floor/nginx |"
echo "|---|---|---|---|---|"
for c in 100 1000; do
  for round in 1 2; do
    read -r n n50 n99 < <(load "$ng" "$c")
    read -r f f50 f99 < <(load "$fl" "$c")
    echo "| $c | $round | $n ($n50, $n99) | $f ($f50, $f99) | $(awk -v f="$f" -v n="$n" 'BEGIN{printf "%.2f", f/n}') |"
  done
done
# What the floor spends per request at 1000 connections.
ticks() { awk '{print $14 + $15}' "/proc/$floor_pid/stat"; }
before=$(ticks)
perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$floor_pid" -o "$dir/perf.csv" -- sleep 8 &
perf_pid=$!
requests=$(wrk -t2 -c1000 -d10s -H 'Host: bench.example.com' "http://$fl/" | awk '/requests in/{print $1}')
after=$(ticks)
wait "$perf_pid"
rate=$(awk -v r="$requests" 'BEGIN{print r/10}')
awk -F, -v rate="$rate" -v cpu="$(( after - before ))" -v requests="$requests" '
  $3=="raw_syscalls:sys_enter"{s=$1} $3=="context-switches"{c=$1}
  END{printf "\nfloor at 1000 connections, per request: %.3f system calls, %.3f context switches, %.1f µs of CPU (user and kernel)\n", s/(rate*8), c/(rate*8), cpu/100*1e6/requests}' "$dir/perf.csv"
