//! The unit files as a second way to run the platform: on one simulated host (a
//! `deis_testkit::Cluster` of one, its own network namespace and `dockerd`), a real systemd
//! starts the platform from the rendered units and `deisctl` (`DEISCTL_SCHEDULER=systemd`)
//! installs, starts, lists, stops and uninstalls them through its SSH tunnel, as an operator
//! did with fleet on CoreOS.
//!
//! The host is a container made here from Debian's packages (no image is pulled): systemd as
//! PID 1, sshd, the docker CLI (from docker.io), etcd and etcdctl (etcd-server, etcd-client).
//! The packages systemd, sshd and a shell need are resolved by `apt-get -s` against an empty
//! status file, fetched with `apt-get download` into deploy/images/build's cache and unpacked
//! with `dpkg-deb -x`; what their maintainer scripts would do is done by the script below
//! (users, `/var/run` -> `/run`, sshd's config and host keys, the enabled units). Besides
//! `ssh.service` the image enables two units a CoreOS host has: `etcd.service` (one member, on
//! `$COREOS_PRIVATE_IPV4:2379` and `127.0.0.1:2379`) and `docker.service`, here a one-shot
//! `docker version` against the host's engine, whose socket is mounted in (the units require
//! `docker.service`).
//!
//! How systemd runs in a container on this machine (cgroup v1: `stat -fc %T /sys/fs/cgroup`
//! says tmpfs; root lacks `CAP_SYS_RESOURCE`, so `--privileged` fails with "unable to apply
//! caps"): `--cap-add SYS_ADMIN --cgroupns private --tmpfs /sys/fs/cgroup --tmpfs /run
//! --tmpfs /run/lock`, `container=docker` in the environment and `/sbin/init` as the command.
//! Given an empty `/sys/fs/cgroup`, systemd mounts the hierarchies itself, and in a cgroup
//! namespace of its own they are its container's cgroup: its services' cgroups nest under the
//! container's, inside the simulated host's cgroup, which the cluster kills at the end. No
//! `seccomp=unconfined` is needed. Units that would reach the machine's kernel from the
//! container (`systemd-sysctl`, `systemd-binfmt`, `systemd-modules-load`, the kernel file
//! system mounts) are masked; udev and logind are not installed or masked. It runs on the
//! host's network (`--net host`), with sshd on port 2022 so as not to take the host's 22.
//!
//! Cost: the systemd image once per change of the script below (about 15 s with the packages
//! cached; 168 MB unpacked); then about 55 s a run with the component images built (a host
//! with the images 13 s, start to a healthy controller 3 s, stop 4 s, uninstall 4 s; the rest
//! is deisctl's SSH logins, the checks and the cluster's teardown).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use deis_testkit::{Cluster, SshKeyPair, eventually};

use crate::setup::{TAG, build_images};
use crate::support::{bin_dir, figure, http, lines, succeeded, workspace_binary};

/// The port sshd listens on in the systemd container (on the host's network).
const SSH_PORT: u16 = 2022;

/// The name of the systemd container on the host's engine.
const HOST_CONTAINER: &str = "e2e-systemd-host";

/// Every unit `install platform` writes, sorted as `list` prints them.
const UNITS: [&str; 8] = [
    "deis-builder.service",
    "deis-controller.service",
    "deis-database.service",
    "deis-logger.service",
    "deis-logspout.service",
    "deis-registry-proxy.service",
    "deis-registry.service",
    "deis-router@1.service",
];

/// The component images the units run.
const COMPONENTS: [&str; 7] = [
    "logger",
    "database",
    "registry",
    "registry-proxy",
    "controller",
    "builder",
    "router",
];

/// Makes the systemd host's image: `$1` the work folder (its `debs/` is deploy/images/build's
/// package cache), `$2` the image name.
const IMAGE_SCRIPT: &str = r#"
set -euo pipefail
work=$1 image=$2
debs=$work/debs dest=$work/rootfs/systemd-host
die() { echo "systemd host image: $*" >&2; exit 1; }
mkdir -p "$debs"
rm -rf "$dest" && mkdir -p "$dest"
wanted="systemd systemd-sysv openssh-server base-files base-passwd bash coreutils dash
    debianutils findutils grep sed util-linux libc-bin login procps"
pkgs=$(apt-get -s -o Dir::State::status=/dev/null -o APT::Install-Recommends=false \
    install $wanted 2>/dev/null | awk '/^Inst /{print $2}') || true
[ -n "$pkgs" ] || die "apt-get cannot resolve $wanted; run apt-get update"
# Only their maintainer scripts use these.
pkgs=$(printf '%s\n' $pkgs | grep -Evx 'usrmerge|perl|perl-modules-.*|libperl.*|lib.*-perl|debconf|adduser')
missing=()
for p in $pkgs etcd-server etcd-client docker.io; do
    compgen -G "$debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    (cd "$debs" && apt-get download -q "${missing[@]}" >/dev/null 2>&1) ||
        die "apt-get download ${missing[*]} failed; run apt-get update and retry"
fi
for p in $pkgs; do for deb in "$debs/${p}"_*.deb; do dpkg-deb -x "$deb" "$dest"; done; done
# The docker CLI, etcd and etcdctl alone from their packages.
tmp=$work/systemd-host-pkgs; rm -rf "$tmp"; mkdir -p "$tmp"
for p in etcd-server etcd-client docker.io; do dpkg-deb -x "$debs/${p}"_*.deb "$tmp"; done
cp "$tmp/usr/bin/docker" "$tmp/usr/bin/etcd" "$tmp/usr/bin/etcdctl" "$dest/usr/bin/"
rm -rf "$tmp" "$dest/usr/share/doc" "$dest/usr/share/man" "$dest/usr/share/locale"

# What the maintainer scripts would have done.
cp "$dest/usr/share/base-passwd/passwd.master" "$dest/etc/passwd"
cp "$dest/usr/share/base-passwd/group.master" "$dest/etc/group"
sed -i 's/^root:\*:/root:x:/' "$dest/etc/passwd"
echo 'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin' >>"$dest/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n' >"$dest/etc/shadow"
chmod 0640 "$dest/etc/shadow"
: >"$dest/etc/machine-id"
rm -rf "$dest/var/run" "$dest/var/lock"
ln -s /run "$dest/var/run"
ln -s /run/lock "$dest/var/lock"
cp "$dest/usr/share/openssh/sshd_config" "$dest/etc/ssh/sshd_config"
printf '%s\n' 'UsePAM no' >"$dest/etc/ssh/sshd_config.d/host.conf"
ssh-keygen -q -A -f "$dest"

sys=$dest/etc/systemd/system
mkdir -p "$sys/multi-user.target.wants"
# What would reach the machine's kernel from the container, or cannot work in one.
for u in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
    systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
    systemd-logind.service getty.target console-getty.service systemd-firstboot.service \
    systemd-pstore.service systemd-journald-audit.socket systemd-hwdb-update.service \
    systemd-remount-fs.service; do
    ln -sf /dev/null "$sys/$u"
done
cat >"$sys/docker.service" <<'UNIT'
[Unit]
Description=Docker Application Container Engine (the host's, at /run/docker.sock)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/docker version

[Install]
WantedBy=multi-user.target
UNIT
cat >"$sys/etcd.service" <<'UNIT'
[Unit]
Description=etcd: the host's store, on COREOS_PRIVATE_IPV4:2379 and 127.0.0.1:2379

[Service]
Type=notify
EnvironmentFile=/etc/environment
ExecStart=/usr/bin/etcd --name host --data-dir /var/lib/etcd \
  --listen-client-urls http://${COREOS_PRIVATE_IPV4}:2379,http://127.0.0.1:2379 \
  --advertise-client-urls http://${COREOS_PRIVATE_IPV4}:2379 \
  --listen-peer-urls http://127.0.0.1:2380 \
  --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster host=http://127.0.0.1:2380
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /lib/systemd/system/ssh.service "$sys/multi-user.target.wants/ssh.service"
for u in docker.service etcd.service; do
    ln -sf "/etc/systemd/system/$u" "$sys/multi-user.target.wants/$u"
done
tar --numeric-owner -C "$dest" -c . | docker import --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' - "$image" >/dev/null
rm -rf "$dest"
"#;

/// The systemd host's image on the main engine, made unless this script's version is there.
fn systemd_host_image() -> String {
    let mut hasher = DefaultHasher::new();
    IMAGE_SCRIPT.hash(&mut hasher);
    let image = format!("deis-e2e/systemd-host:{:016x}", hasher.finish());
    let present = Command::new("docker")
        .args(["image", "inspect", "--format", ".", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return image;
    }
    let work = bin_dir().join("../deis-images");
    std::fs::create_dir_all(&work).expect("image work directory");
    // deploy/images/build's lock: its package cache is shared.
    let lock = std::fs::File::create(work.join("e2e.lock")).expect("lock file");
    lock.lock().expect("lock");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg(IMAGE_SCRIPT)
        .arg("bash")
        .arg(&work)
        .arg(&image)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "making the systemd host image failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    figure(format_args!(
        "systemd: the host image took {:.1} s to make",
        started.elapsed().as_secs_f64()
    ));
    image
}

/// One simulated host whose systemd runs in a container, and deisctl's home to reach it.
struct SystemdHost {
    cluster: Cluster,
    key: SshKeyPair,
    home: tempfile::TempDir,
}

impl SystemdHost {
    fn addr(&self) -> Ipv4Addr {
        self.cluster.host(0).addr()
    }

    /// `docker <args>` against the host's engine.
    fn docker(&self, args: &[&str]) -> Output {
        self.cluster
            .docker(0)
            .args(args)
            .output()
            .expect("docker runs")
    }

    /// `docker <args>` against the host's engine, expecting success: its output lines.
    fn docker_lines(&self, args: &[&str]) -> Vec<String> {
        let out = self.docker(args);
        lines(&succeeded(&format!("docker {args:?} on the host"), &out))
    }

    /// `<args>` in the systemd container: what it printed, and whether it succeeded.
    fn exec(&self, args: &[&str]) -> (bool, String) {
        let mut all = vec!["exec", HOST_CONTAINER];
        all.extend_from_slice(args);
        let out = self.docker(&all);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// deisctl with the systemd backend, through the tunnel to the container's sshd.
    fn deisctl(&self, args: &[&str]) -> Output {
        Command::new(workspace_binary("deisctl"))
            .args(args)
            .env("HOME", self.home.path())
            .env("DEISCTL_SCHEDULER", "systemd")
            .env("DEISCTL_TUNNEL", format!("root@{}:{SSH_PORT}", self.addr()))
            .env("DEISCTL_SSH_KEY", self.key.private_key())
            .env("DEISCTL_IMAGE_TAG", TAG)
            .env("DEISCTL_START_TIMEOUT", "120")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DOCKER_HOST")
            .env_remove("DEISCTL_PREFIX")
            .env_remove("DEIS_ETCD_ENDPOINTS")
            .env_remove("DEIS_ETCD_NAMESPACE")
            .output()
            .expect("deisctl runs")
    }

    /// deisctl, expecting success: what it printed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.deisctl(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "deisctl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The platform's containers on the host (`deis-*`), running or not.
    fn platform_containers(&self) -> Vec<String> {
        self.docker_lines(&["ps", "-a", "--format", "{{.Names}}"])
            .into_iter()
            .filter(|n| n.starts_with("deis-"))
            .collect()
    }
}

/// Writes `text` to `path`.
fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A host with the images and the systemd container running, its sshd known to deisctl.
async fn systemd_host() -> SystemdHost {
    let built = Instant::now();
    build_images();
    let image = systemd_host_image();
    figure(format_args!(
        "systemd: the images were there or made in {:.1} s",
        built.elapsed().as_secs_f64()
    ));
    let started = Instant::now();
    let cluster = Cluster::start(1).await;
    let mut images: Vec<String> = COMPONENTS
        .iter()
        .map(|c| format!("deis/{c}:{TAG}"))
        .collect();
    images.push(image.clone());
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    cluster.load_images(&images).await;
    figure(format_args!(
        "systemd: a host with the images took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let key = SshKeyPair::generate();
    let host = cluster.host(0);
    let files = host.dir().join("systemd-host");
    std::fs::create_dir_all(&files).expect("the systemd host's folder");
    write(
        &files.join("environment"),
        &format!("COREOS_PRIVATE_IPV4={}\n", host.addr()),
    );
    write(
        &files.join("sshd.conf"),
        &format!(
            "Port {SSH_PORT}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAuthorizedKeysFile /etc/ssh/deis-test/authorized_keys\n\
             StrictModes no\nAllowTcpForwarding yes\nAllowStreamLocalForwarding yes\n"
        ),
    );
    write(
        &files.join("authorized_keys"),
        &format!("{}\n", key.public_key()),
    );
    let mount = |name: &str, target: &str| format!("{}:{target}:ro", files.join(name).display());
    let environment = mount("environment", "/etc/environment");
    let sshd = mount("sshd.conf", "/etc/ssh/sshd_config.d/deis-test.conf");
    let keys = mount("authorized_keys", "/etc/ssh/deis-test/authorized_keys");
    let home = tempfile::tempdir().expect("a home folder");
    let systemd = SystemdHost { cluster, key, home };
    systemd.docker_lines(&[
        "run",
        "-d",
        "--name",
        HOST_CONTAINER,
        "--net",
        "host",
        "--cap-add",
        "SYS_ADMIN",
        "--cgroupns",
        "private",
        "--tmpfs",
        "/sys/fs/cgroup",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "-v",
        "/run/docker.sock:/run/docker.sock",
        "-v",
        &environment,
        "-v",
        &sshd,
        "-v",
        &keys,
        &image,
        "/sbin/init",
    ]);
    let booted = Instant::now();
    eventually(Duration::from_secs(60), "systemd up", || async {
        match systemd.exec(&["systemctl", "is-system-running"]) {
            (true, state) if state.trim() == "running" => Ok(()),
            (_, state) if state.trim() == "degraded" => {
                let (_, failed) = systemd.exec(&["systemctl", "--failed", "--no-pager"]);
                panic!("systemd in the container is degraded:\n{failed}");
            }
            (_, state) => Err(state),
        }
    })
    .await;
    figure(format_args!(
        "systemd: booted in the container in {:.1} s",
        booted.elapsed().as_secs_f64()
    ));
    let (ok, host_key) = systemd.exec(&["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    assert!(ok, "the container's host key: {host_key}");
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let ssh = systemd.home.path().join(".ssh");
    std::fs::create_dir_all(&ssh).expect("~/.ssh");
    write(
        &ssh.join("known_hosts"),
        &format!("[{}]:{SSH_PORT} {}\n", systemd.addr(), host_key.join(" ")),
    );
    systemd
}

/// `list`'s row of `unit` without the unit: MACHINE LOAD ACTIVE SUB.
fn row<'a>(list: &'a str, unit: &str) -> Option<Vec<&'a str>> {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(unit))
        .map(|l| l.split_whitespace().skip(1).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_runs_the_platform_from_the_unit_files_and_deisctl_reads_their_state() {
    let host = systemd_host().await;
    let machine_id = host.exec(&["cat", "/etc/machine-id"]).1;
    let machine = format!(
        "{}.../{}",
        machine_id.trim().chars().take(8).collect::<String>(),
        host.addr()
    );

    // Settings go to the host's etcd through the tunnel; install writes the rendered units.
    host.ok(&["config", "platform", "set", "domain=example.com"]);
    let etcd = host.deisctl(&["install", "etcd"]);
    let said = String::from_utf8_lossy(&etcd.stderr);
    assert!(
        !etcd.status.success() && said.lines().count() == 1 && said.contains("etcd.service"),
        "etcd is the host's own: {said}"
    );
    let installed = host.ok(&["install", "platform"]);
    for unit in UNITS {
        assert!(
            installed.contains(&format!("{unit}: loaded")),
            "{unit}: {installed}"
        );
    }
    let (_, files) = host.exec(&["ls", "/etc/systemd/system"]);
    for unit in UNITS {
        assert!(files.lines().any(|f| f == unit), "{unit}: {files}");
    }
    let (_, controller) = host.exec(&["cat", "/etc/systemd/system/deis-controller.service"]);
    assert!(
        controller.contains(&format!("deis/controller:{TAG}")),
        "rendered with the platform's image: {controller}"
    );
    let list = host.ok(&["list"]);
    for unit in UNITS {
        let row = row(&list, unit).unwrap_or_else(|| panic!("{unit} is not listed:\n{list}"));
        assert_eq!(
            row,
            [machine.as_str(), "loaded", "inactive", "dead"],
            "{list}"
        );
    }

    // start: in order, each unit to active/running under the host's systemd.
    let started = Instant::now();
    let start = host.ok(&["start", "platform"]);
    let order: Vec<usize> = [
        "deis-logger.service: active/running",
        "deis-logspout.service: active/running",
        "deis-database.service: active/running",
        "deis-registry.service: active/running",
        "deis-registry-proxy.service: active/running",
        "deis-controller.service: active/running",
        "deis-builder.service: active/running",
        "deis-router@1.service: active/running",
    ]
    .iter()
    .map(|line| {
        start
            .find(line)
            .unwrap_or_else(|| panic!("{line}:\n{start}"))
    })
    .collect();
    assert!(order.is_sorted(), "in the platform's order:\n{start}");
    let controller = std::net::SocketAddr::from((host.addr(), 8000));
    eventually(
        Duration::from_secs(120),
        "the controller's /healthz",
        || async {
            match http(controller, "GET", "deis.example.com", "/healthz", None, "").await {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    figure(format_args!(
        "systemd: start platform to a healthy controller took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // Every unit runs, on this machine, its container up: none is in a restart loop.
    eventually(Duration::from_secs(60), "every unit running", || async {
        let list = host.ok(&["list"]);
        let running = host.docker_lines(&["ps", "--format", "{{.Names}}"]);
        for unit in UNITS {
            let row = row(&list, unit).ok_or_else(|| format!("{unit} not listed:\n{list}"))?;
            if row != [machine.as_str(), "loaded", "active", "running"] {
                return Err(list);
            }
        }
        let wanted = [
            "deis-logger",
            "deis-logspout",
            "deis-database",
            "deis-registry",
            "deis-registry-proxy",
            "deis-controller",
            "deis-builder",
            "deis-router",
        ];
        match wanted.iter().find(|c| !running.iter().any(|r| r == *c)) {
            Some(c) => Err(format!("{c} is not running: {running:?}")),
            None => Ok(()),
        }
    })
    .await;
    let status = host.ok(&["status", "controller"]);
    assert!(
        status.contains("deis-controller.service") && status.contains("active (running)"),
        "{status}"
    );
    let journal = host.ok(&["journal", "controller", "-n", "200"]);
    assert!(journal.contains("deis-controller"), "{journal}");

    // stop: every unit inactive, no platform container left running.
    let stopped_at = Instant::now();
    let stop = host.ok(&["stop", "platform"]);
    for unit in UNITS {
        assert!(
            stop.contains(&format!("{unit}: inactive/dead")),
            "{unit}:\n{stop}"
        );
    }
    figure(format_args!(
        "systemd: stop platform took {:.1} s",
        stopped_at.elapsed().as_secs_f64()
    ));
    let list = host.ok(&["list"]);
    for unit in UNITS {
        let row = row(&list, unit).unwrap_or_else(|| panic!("{unit} is not listed:\n{list}"));
        assert_eq!(row[2..], ["inactive", "dead"], "{list}");
    }
    let running: Vec<String> = host
        .docker_lines(&["ps", "--format", "{{.Names}}"])
        .into_iter()
        .filter(|n| n.starts_with("deis-"))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");

    // uninstall: no unit file, no platform container, no data volume.
    let uninstalled_at = Instant::now();
    host.ok(&["uninstall", "platform"]);
    figure(format_args!(
        "systemd: uninstall platform took {:.1} s",
        uninstalled_at.elapsed().as_secs_f64()
    ));
    let (_, files) = host.exec(&["ls", "/etc/systemd/system"]);
    assert!(
        !files.lines().any(|f| f.starts_with("deis-")),
        "unit files left: {files}"
    );
    let (_, wants) = host.exec(&["ls", "/etc/systemd/system/multi-user.target.wants"]);
    assert!(
        !wants.lines().any(|f| f.starts_with("deis-")),
        "units left enabled: {wants}"
    );
    assert_eq!(host.platform_containers(), Vec::<String>::new());
    let volumes: Vec<String> = host
        .docker_lines(&["volume", "ls", "-q"])
        .into_iter()
        .filter(|v| v.starts_with("deis-"))
        .collect();
    assert!(volumes.is_empty(), "volumes left: {volumes:?}");
    let list = host.ok(&["list"]);
    assert_eq!(list.lines().count(), 1, "only the heading: {list}");
}
