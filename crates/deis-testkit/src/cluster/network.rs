//! The cluster's network: a /24 of 10.224.0.0/11 claimed for this cluster alone, a hub
//! namespace with a bridge, a namespace per host whose `eth0` is on the bridge, and a veth from
//! this namespace (the workstation) to the bridge. The hosts have no default route: nothing they
//! send leaves the namespaces the cluster created.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::Ipv4Net;

/// The pool the clusters' subnets come from (`Outside` uses 10.200.0.0/13).
const POOL: Ipv4Addr = Ipv4Addr::new(10, 224, 0, 0);
const POOL_SUBNETS: u32 = 1 << 13;
/// Where the subnets in use are claimed, one file each, so parallel tests never share one.
const CLAIMS: &str = "/run/deis-t/subnets";

/// Claims a /24 of the pool that overlaps no address, route or name server of this machine and
/// no other cluster's; returns it and its claim file (to remove with the cluster).
pub(super) fn claim_subnet(seed: u32) -> (Ipv4Net, PathBuf) {
    let in_use = addresses_in_use();
    std::fs::create_dir_all(CLAIMS)
        .unwrap_or_else(|e| panic!("cannot create {CLAIMS} (this needs root): {e}"));
    for attempt in 0..256u32 {
        let index = seed.wrapping_add(attempt.wrapping_mul(2_654_435_761)) % POOL_SUBNETS;
        let base = Ipv4Addr::from(u32::from(POOL) + index * 256);
        let Ok(subnet) = Ipv4Net::new(base, 24) else {
            continue;
        };
        if in_use
            .iter()
            .any(|used| used.contains(&subnet.network()) || subnet.contains(&used.network()))
        {
            continue;
        }
        let claim = Path::new(CLAIMS).join(base.to_string());
        if try_claim(&claim) {
            return (subnet, claim);
        }
    }
    panic!("no free /24 in 10.224.0.0/11 for a test cluster (claims in {CLAIMS})");
}

/// Creates `claim` holding this process's id; takes over a claim whose process is gone.
fn try_claim(claim: &Path) -> bool {
    use std::io::Write;
    for _ in 0..2 {
        match std::fs::File::create_new(claim) {
            Ok(mut file) => {
                let _ = write!(file, "{}", std::process::id());
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(claim).unwrap_or_default();
                let owner_alive = owner.trim().parse::<u32>().is_ok_and(|pid| {
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                });
                if owner_alive || owner.is_empty() {
                    // Taken, or being written this very moment.
                    return false;
                }
                let _ = std::fs::remove_file(claim);
            }
            Err(e) => panic!("cannot claim a subnet in {}: {e}", claim.display()),
        }
    }
    false
}

/// Every IPv4 address and route of this namespace (any table) and the name servers in
/// `/etc/resolv.conf`: a cluster subnet must overlap none, or traffic meant for them would go to
/// the cluster.
fn addresses_in_use() -> Vec<Ipv4Net> {
    let mut used = Vec::new();
    for line in ip_lines(&["-o", "-4", "addr", "show"]) {
        let mut words = line.split_whitespace();
        if words.any(|w| w == "inet")
            && let Some(net) = words.next().and_then(parse_net)
        {
            used.push(net);
        }
    }
    const ROUTE_TYPES: [&str; 10] = [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "unreachable",
        "prohibit",
        "blackhole",
        "throw",
        "nat",
        "anycast",
    ];
    for line in ip_lines(&["-o", "-4", "route", "show", "table", "all"]) {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_some_and(|w| ROUTE_TYPES.contains(w)) {
            words.next();
        }
        // A default route leads everywhere: it is not an address in use.
        if let Some(net) = words.next().and_then(parse_net) {
            used.push(net);
        }
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for line in resolv.lines() {
        if let Some(("nameserver", server)) = line.trim().split_once(char::is_whitespace)
            && let Some(net) = parse_net(server.trim())
        {
            used.push(net);
        }
    }
    used
}

fn parse_net(word: &str) -> Option<Ipv4Net> {
    word.parse::<Ipv4Net>()
        .ok()
        .or_else(|| word.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

fn ip_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `ip args`; panics with its error output if it fails.
pub(super) fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
    assert!(
        out.status.success(),
        "ip {} failed (this needs root): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bridge in the hub namespace.
const BRIDGE: &str = "br0";

/// Creates the hub namespace with its bridge, and the workstation's veth (`link`, at
/// `workstation/24`) whose peer is on the bridge.
pub(super) fn create_hub(hub: &str, link: &str, workstation: Ipv4Addr) {
    ip(&["netns", "add", hub]);
    ip(&["-n", hub, "link", "set", "lo", "up"]);
    ip(&["-n", hub, "link", "add", BRIDGE, "type", "bridge"]);
    ip(&["-n", hub, "link", "set", BRIDGE, "up"]);
    ip(&[
        "link", "add", link, "type", "veth", "peer", "name", "ws", "netns", hub,
    ]);
    ip(&["-n", hub, "link", "set", "ws", "master", BRIDGE, "up"]);
    ip(&["addr", "add", &format!("{workstation}/24"), "dev", link]);
    ip(&["link", "set", link, "up"]);
}

/// Creates a host's namespace `ns` whose `eth0`, at `addr/24`, is on the hub's bridge (as
/// `peer` there).
pub(super) fn create_host(hub: &str, ns: &str, peer: &str, addr: Ipv4Addr) {
    ip(&["netns", "add", ns]);
    ip(&["-n", ns, "link", "set", "lo", "up"]);
    ip(&[
        "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", hub,
    ]);
    ip(&["-n", hub, "link", "set", peer, "master", BRIDGE, "up"]);
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", ns, "link", "set", "eth0", "up"]);
}

/// Deletes the namespaces (and so the veth pairs with an end in them) and the workstation's
/// link; never panics.
pub(super) fn delete(namespaces: &[String], link: &str) {
    for ns in namespaces {
        if Path::new("/run/netns").join(ns).exists() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
    if Path::new("/sys/class/net").join(link).exists() {
        let _ = Command::new("ip").args(["link", "del", link]).output();
    }
}
