//! A host "outside" this one, for tests of what app containers may reach: a network namespace
//! joined to this host by a veth pair on a /30 of its own, so its address is neither this host's
//! nor a Docker network's. App containers reach it as they would reach the Internet (routed out,
//! masqueraded); a service started on [`Outside::host_ip`] is on this host instead.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::binaries::require;
use crate::process::unique_id;

/// The namespace; removed (with its veth pair) when dropped.
pub struct Outside {
    name: String,
    host_ip: Ipv4Addr,
    ip: Ipv4Addr,
}

impl Outside {
    /// Creates the namespace and its link; panics with what is missing (root, iproute2).
    pub fn create() -> Outside {
        let ip_tool = require("ip", "iproute2");
        require("nsenter", "util-linux");
        let id = unique_id();
        let n = id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        // 10.200.0.0/13, a /30 per test: .1 this host, .2 the outside.
        let base = u32::from(Ipv4Addr::new(10, 200, 0, 0)) + (n % (1 << 17)) * 4;
        let outside = Outside {
            name: format!("deis-out-{n:08x}"),
            host_ip: Ipv4Addr::from(base + 1),
            ip: Ipv4Addr::from(base + 2),
        };
        let (host_end, far_end) = (format!("dxh{n:08x}"), format!("dxo{n:08x}"));
        let ns = outside.name.as_str();
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.into()],
            vec![
                "-n".into(),
                ns.into(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
            [
                "link", "add", &host_end, "type", "veth", "peer", "name", &far_end, "netns", ns,
            ]
            .map(String::from)
            .to_vec(),
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", outside.host_ip),
                "dev".into(),
                host_end.clone(),
            ],
            ["link", "set", &host_end, "up"].map(String::from).to_vec(),
            vec![
                "-n".into(),
                ns.into(),
                "addr".into(),
                "add".into(),
                format!("{}/30", outside.ip),
                "dev".into(),
                far_end.clone(),
            ],
            ["-n", ns, "link", "set", &far_end, "up"]
                .map(String::from)
                .to_vec(),
            vec![
                "-n".into(),
                ns.into(),
                "route".into(),
                "add".into(),
                "default".into(),
                "via".into(),
                outside.host_ip.to_string(),
            ],
        ];
        for step in steps {
            let out = Command::new(&ip_tool)
                .args(&step)
                .output()
                .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
            assert!(
                out.status.success(),
                "ip {} failed (this needs root): {}",
                step.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        outside
    }

    /// The outside host's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// This host's address on the link to the outside.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// `program` to be run on the outside host.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg(program);
        command
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
