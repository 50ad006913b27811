//! The platform as `deisctl` runs it: every component in its own container, from images that
//! `deploy/images/build` makes out of Debian packages and this build's binaries, on a loopback
//! address of its own (`127.x.y.z`, the platform's standard ports) so that it clashes with
//! nothing else on the machine. Uninstalled, with everything it made, when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use deis_testkit::require;

use super::Setup;
use crate::support::{bin_dir, workspace_binary};

/// The image tag the tests build and run.
pub(crate) const TAG: &str = "e2e";

/// Builds the component images once per build of the binaries (a stamp of the binaries'
/// sizes and times, under a lock shared by concurrent test processes).
pub(crate) fn build_images() {
    require("docker", "docker.io");
    require("dpkg-deb", "dpkg");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("deploy/images/build");
    let work = bin_dir().join("../deis-images");
    std::fs::create_dir_all(&work).expect("image work directory");
    let lock = std::fs::File::create(work.join("e2e.lock")).expect("lock file");
    lock.lock().expect("lock");
    let mut stamp = std::fs::read_to_string(&script).expect("the build script");
    for entrypoint in ["database-entrypoint", "backup-entrypoint"] {
        stamp.push_str(
            &std::fs::read_to_string(root.join("deploy/images").join(entrypoint))
                .expect("an image's entrypoint"),
        );
    }
    for name in [
        "deis-controller",
        "deis-builder",
        "deis-logger",
        "deis-router",
    ] {
        let meta = std::fs::metadata(workspace_binary(name)).expect("binary metadata");
        stamp.push_str(&format!(
            "{name} {} {:?}\n",
            meta.len(),
            meta.modified().ok()
        ));
    }
    let stamp_file = work.join(format!("{TAG}.stamp"));
    let images: Vec<String> = [
        "base",
        "stack",
        "etcd",
        "cache",
        "database",
        "registry",
        "backup",
        "registry-proxy",
        "logger",
        "controller",
        "builder",
        "router",
    ]
    .iter()
    .map(|c| format!("deis/{c}:{TAG}"))
    .collect();
    let present = Command::new("docker")
        .args(["image", "inspect", "--format", "."])
        .args(&images)
        .output()
        .is_ok_and(|o| o.status.success());
    if present && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return;
    }
    let output = Command::new(&script)
        .args(["--tag", TAG, "--bin-dir"])
        .arg(bin_dir())
        .env("DEIS_IMAGE_WORK", &work)
        .output()
        .expect("deploy/images/build runs");
    assert!(
        output.status.success(),
        "deploy/images/build failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&stamp_file, stamp).expect("stamp");
}

/// A containerised platform of its own.
pub(crate) struct Containers {
    pub(crate) ip: String,
    pub(crate) prefix: String,
    pub(crate) endpoint: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Containers {
    fn drop(&mut self) {
        let _ = self.deisctl(&["uninstall", "platform"]);
        // Whatever an interrupted test left: containers and volumes with the platform's label.
        let label = format!("label=deis.platform={}", self.prefix);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-fv", id]).output();
            }
        }
        if let Ok(out) = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &label])
            .output()
        {
            for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["volume", "rm", name]).output();
            }
        }
    }
}

impl Containers {
    /// Images built, etcd installed and running on a fresh loopback address, the platform's
    /// address and domain (`example.com`) set; nothing else installed yet.
    pub(crate) fn with_store() -> Containers {
        build_images();
        let id = deis_testkit::unique_id();
        let n = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut hasher);
            hasher.finish() as u32
        };
        let ip = format!(
            "127.{}.{}.{}",
            100 + (n >> 16) % 150,
            (n >> 8) & 0xff,
            1 + n % 250
        );
        let containers = Containers {
            endpoint: format!("http://{ip}:2379"),
            ip,
            prefix: format!("e2e-{id}"),
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        containers.configure();
        containers
    }

    /// etcd installed and the platform's settings (address, domain, stack image) set in it.
    pub(crate) fn configure(&self) {
        self.ok(&["install", "etcd"]);
        self.ok(&[
            "config",
            "platform",
            "set",
            &format!("bindHost={}", self.ip),
            "domain=example.com",
        ]);
        self.ok(&[
            "config",
            "builder",
            "set",
            &format!("stackImage=deis/stack:{TAG}"),
        ]);
    }

    /// The whole platform installed and started.
    pub(crate) fn start() -> Containers {
        let c = Containers::with_store();
        c.ok(&["install", "platform"]);
        c.ok(&["start", "platform"]);
        c
    }

    /// Runs deisctl against this platform.
    pub(crate) fn deisctl(&self, args: &[&str]) -> Output {
        Command::new(workspace_binary("deisctl"))
            .args(args)
            .env("DEISCTL_PREFIX", &self.prefix)
            .env("DEISCTL_IMAGE_TAG", TAG)
            .env("DEIS_ETCD_ENDPOINTS", &self.endpoint)
            .env_remove("DEIS_ETCD_NAMESPACE")
            .output()
            .expect("deisctl runs")
    }

    /// Runs deisctl, expecting success: what it printed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        crate::support::succeeded(&format!("deisctl {args:?}"), &self.deisctl(args))
    }

    pub(crate) fn addr(&self, port: u16) -> SocketAddr {
        format!("{}:{port}", self.ip).parse().expect("address")
    }

    /// The image apps build FROM (busybox with `httpd`).
    pub(crate) fn app_base_image(&self) -> String {
        format!("deis/base:{TAG}")
    }
}

impl Setup for Containers {
    fn router(&self) -> SocketAddr {
        self.addr(80)
    }
    fn ssh(&self) -> SocketAddr {
        self.addr(2222)
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn controller_url(&self) -> String {
        format!("http://{}", self.addr(8000))
    }
    fn https(&self) -> SocketAddr {
        self.addr(443)
    }
    fn logger(&self) -> SocketAddr {
        self.addr(8088)
    }
    fn platform_ports(&self) -> Vec<u16> {
        vec![
            2379, 2380, 6379, 5432, 5000, 5001, 8000, 8088, 514, 2222, 2224, 80, 443, 9090,
        ]
    }
    fn app_label(&self) -> String {
        format!("deis.platform={}", self.prefix)
    }
    fn base_image(&self) -> String {
        self.app_base_image()
    }
    fn registry(&self) -> Option<String> {
        Some(self.addr(5000).to_string())
    }
    fn platform_log(&self) -> String {
        ["builder", "controller"]
            .iter()
            .filter_map(|c| {
                Command::new("docker")
                    .args(["logs", &format!("{}-{c}", self.prefix)])
                    .output()
                    .ok()
            })
            .map(|out| {
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr)
            })
            .collect()
    }
    fn has_repository(&self, app: &str) -> bool {
        let builder = format!("{}-builder", self.prefix);
        let path = format!("/var/lib/deis/builder/repos/{app}.git");
        Command::new("docker")
            .args(["exec", &builder, "test", "-e", &path])
            .status()
            .is_ok_and(|s| s.success())
    }
    async fn reboot(&self) -> bool {
        forget_firewall(&format!("{}-apps", self.prefix));
        // Docker restarts the platform's containers by itself; the controller's is the one
        // that matters here.
        let controller = format!("{}-controller", self.prefix);
        let restarted = Command::new("docker")
            .args(["restart", "--time", "15", &controller])
            .output()
            .expect("docker runs");
        assert!(restarted.status.success(), "docker restart {controller}");
        let addr = self.addr(8000);
        deis_testkit::eventually(
            std::time::Duration::from_secs(60),
            "the controller back",
            || async {
                match deis_testkit::http_get(addr, "/healthz") {
                    Ok((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        true
    }
}

/// Deletes the firewall rules of the app network `network` (commented `deis <network>`) and its
/// chain, as a reboot would: the kernel keeps them in memory only.
fn forget_firewall(network: &str) {
    let comment = format!("\"deis {network}\"");
    let mut chains = Vec::new();
    for chain in ["INPUT", "DOCKER-USER"] {
        let listed = Command::new("iptables")
            .args(["-w", "-S", chain])
            .output()
            .expect("iptables runs");
        for rule in String::from_utf8_lossy(&listed.stdout).lines() {
            let Some(rest) = rule.strip_prefix("-A ") else {
                continue;
            };
            if !rest.contains(&comment) {
                continue;
            }
            if let Some(jump) = rest.split(" -j ").nth(1)
                && jump.starts_with("DEIS-")
            {
                chains.push(jump.to_owned());
            }
            // The rule as iptables printed it, its comment one word again.
            let words: Vec<String> = rest
                .replace(&comment, "COMMENT")
                .split_whitespace()
                .map(|w| {
                    if w == "COMMENT" {
                        format!("deis {network}")
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            let deleted = Command::new("iptables")
                .args(["-w", "-D"])
                .args(&words)
                .output()
                .expect("iptables runs");
            assert!(
                deleted.status.success(),
                "iptables -D {rest}: {}",
                String::from_utf8_lossy(&deleted.stderr)
            );
        }
    }
    assert!(
        !chains.is_empty(),
        "no firewall rules for {network} to forget"
    );
    for chain in chains {
        for flag in ["-F", "-X"] {
            let _ = Command::new("iptables").args(["-w", flag, &chain]).output();
        }
    }
}
