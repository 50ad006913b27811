//! The hosts' provisioning files in `deploy/cloud-init/`: the Debian user data is valid
//! cloud-config by `cloud-init schema` (which a broken copy fails), the Flatcar Butane configs
//! write the same files and units, and the placeholders are those docs/provisioning.md fills.
//!
//! Nothing here can run Butane (Debian has no package of it): the Flatcar files are read as YAML
//! and compared with the Debian ones. Python and its YAML module come with cloud-init.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use deis_testkit::require;

const FIRST: &[&str] = &["@SSH_PUBLIC_KEY@", "@PRIVATE_NETWORK@"];
const OTHER: &[&str] = &[
    "@SSH_PUBLIC_KEY@",
    "@PRIVATE_NETWORK@",
    "@FIRST_HOST_ADDRESS@",
    "@MANAGER_JOIN_TOKEN@",
];
/// The Swarm's address pool: the only address the files hold, and only the first host's.
const ADDR_POOL: &str = "172.16.0.0/16";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir() -> PathBuf {
    repo().join("deploy/cloud-init")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `cloud-init schema --config-file <path>`: whether it passed, and what it said.
fn schema(path: &Path) -> (bool, String) {
    let out = Command::new(require("cloud-init", "cloud-init"))
        .args(["schema", "--config-file"])
        .arg(path)
        .output()
        .expect("cloud-init runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// What a cloud-config or Butane file sets up, one fact a line: `key <top-level key>`,
/// `package <name>`, `user <name> <ssh key>`, `file <path> <mode> <sha256>`, `runcmd <argv>`,
/// `unit <name> <enabled> <sha256 or ->`, `variant <variant> <version>`.
const FACTS: &str = r#"
import hashlib, sys
try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is not installed; install it with: apt-get install -y python3-yaml")
doc = yaml.safe_load(open(sys.argv[1]))
sha = lambda s: hashlib.sha256(s.encode()).hexdigest()
if "variant" in doc:
    print("variant", doc["variant"], doc["version"])
    for u in doc.get("passwd", {}).get("users", []):
        for k in u.get("ssh_authorized_keys", []):
            print("user", u["name"], k)
    for f in doc.get("storage", {}).get("files", []):
        print("file", f["path"], oct(f["mode"]), sha(f["contents"]["inline"]))
    for u in doc.get("systemd", {}).get("units", []):
        print("unit", u["name"], u.get("enabled"), sha(u["contents"]) if "contents" in u else "-")
else:
    for k in doc:
        print("key", k)
    for p in doc.get("packages", []):
        print("package", p)
    for u in doc.get("users", []):
        for k in (u.get("ssh_authorized_keys", []) if isinstance(u, dict) else []):
            print("user", u["name"], k)
    for f in doc.get("write_files", []):
        print("file", f["path"], oct(int(f["permissions"], 8)), sha(f["content"]))
    for c in doc.get("runcmd", []):
        print("runcmd", " ".join(c))
"#;

fn facts(path: &Path) -> BTreeSet<String> {
    let out = Command::new(require("python3", "cloud-init"))
        .args(["-c", FACTS])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading {} as YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn with_prefix<'a>(facts: &'a BTreeSet<String>, prefix: &str) -> BTreeSet<&'a str> {
    facts
        .iter()
        .filter(|f| f.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

/// The `@NAME@` placeholders in `text`.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('@') {
            found.insert(format!("@{}@", &after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            rest = after;
        }
    }
    found
}

/// The dotted quads in `text` (addresses and networks).
fn ipv4s(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| {
            let addr = w.split('/').next().unwrap_or_default();
            let parts: Vec<&str> = addr.split('.').collect();
            parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn debian_user_data_is_valid_cloud_config() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("deploy/cloud-init") {
        let path = entry.expect("entry").path();
        if !read(&path).starts_with("#cloud-config\n") {
            continue;
        }
        let (valid, said) = schema(&path);
        assert!(
            valid,
            "{} is not valid cloud-config: {said}",
            path.display()
        );
        checked.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    checked.sort();
    assert_eq!(
        checked,
        ["debian-first-host.yaml", "debian-other-host.yaml"]
    );
}

#[test]
fn a_broken_copy_is_reported_invalid() {
    let good = read(&dir().join("debian-other-host.yaml"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let breakages = [
        // A command that is neither a list nor a string.
        ("  - [modprobe, br_netfilter]\n", "  - 5\n", "runcmd.1"),
        // A file mode as a number (YAML reads 0755 as 493).
        (
            "permissions: \"0755\"",
            "permissions: 0755",
            "permissions: 493 is not of type 'string'",
        ),
        // Cloud-init ignores user data without its header.
        ("#cloud-config\n", "# cloud-config\n", "#cloud-config"),
    ];
    for (i, (from, to, reported)) in breakages.into_iter().enumerate() {
        assert!(good.contains(from), "the breakage {i} applies: {from:?}");
        let path = tmp.path().join(format!("broken-{i}.yaml"));
        std::fs::write(&path, good.replacen(from, to, 1)).expect("write the copy");
        let (valid, said) = schema(&path);
        assert!(!valid, "{from:?} -> {to:?} passes: {said}");
        assert!(said.contains(reported), "{reported} in: {said}");
    }
}

#[test]
fn placeholders_are_the_documented_ones_and_addresses_are_not_hard_coded() {
    let page = read(&repo().join("docs/provisioning.md"));
    for (file, wanted) in [
        ("debian-first-host.yaml", FIRST),
        ("flatcar-first-host.bu", FIRST),
        ("debian-other-host.yaml", OTHER),
        ("flatcar-other-host.bu", OTHER),
    ] {
        let text = read(&dir().join(file));
        let wanted: BTreeSet<String> = wanted.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(placeholders(&text), wanted, "{file}");
        for p in &wanted {
            assert!(
                page.contains(p),
                "docs/provisioning.md tells how to fill {p}"
            );
        }
        let addresses = ipv4s(&text);
        if file.contains("first") {
            assert_eq!(addresses, [ADDR_POOL], "{file}");
        } else {
            assert!(addresses.is_empty(), "{file} hard-codes {addresses:?}");
        }
    }
}

#[test]
fn debian_hosts_get_what_the_platform_needs() {
    for mode in ["first", "other"] {
        let facts = facts(&dir().join(format!("debian-{mode}-host.yaml")));
        // cloud-init's schema lets unknown keys pass: a misspelt one would be ignored.
        assert_eq!(
            with_prefix(&facts, "key "),
            BTreeSet::from([
                "key package_update",
                "key package_upgrade",
                "key packages",
                "key ssh_pwauth",
                "key users",
                "key write_files",
                "key runcmd",
            ]),
            "debian-{mode}-host.yaml"
        );
        assert_eq!(
            with_prefix(&facts, "package "),
            BTreeSet::from([
                "package docker.io",
                "package chrony",
                "package openssh-server"
            ])
        );
        assert_eq!(
            with_prefix(&facts, "user "),
            BTreeSet::from(["user core @SSH_PUBLIC_KEY@"])
        );
        for cmd in [
            "runcmd usermod --append --groups docker core",
            "runcmd systemctl enable --now docker.service chrony.service",
            "runcmd systemctl enable deis-swarm.service",
        ] {
            assert!(facts.contains(cmd), "{cmd} in debian-{mode}-host.yaml");
        }
        let swarm = read(&dir().join(format!("debian-{mode}-host.yaml")));
        let verb = if mode == "first" { "init" } else { "join" };
        assert!(swarm.contains(&format!("ExecStart=/opt/deis/bin/deis-swarm {verb}\n")));
    }
}

#[test]
fn flatcar_hosts_are_the_debian_ones() {
    for mode in ["first", "other"] {
        let debian = facts(&dir().join(format!("debian-{mode}-host.yaml")));
        let flatcar = facts(&dir().join(format!("flatcar-{mode}-host.bu")));
        let flatcar_file = |f: &str| f.starts_with("file /etc/flatcar/");
        assert!(
            flatcar.contains("variant flatcar 1.0.0"),
            "flatcar-{mode}-host.bu: {flatcar:?}"
        );
        assert_eq!(
            with_prefix(&flatcar, "user "),
            with_prefix(&debian, "user ")
        );
        // The same files, the unit Debian writes under /etc/systemd/system included.
        let mut files: BTreeSet<String> = with_prefix(&flatcar, "file ")
            .into_iter()
            .filter(|f| !flatcar_file(f))
            .map(str::to_owned)
            .collect();
        for unit in with_prefix(&flatcar, "unit ") {
            let [_, name, enabled, sha] = unit.split(' ').collect::<Vec<_>>()[..] else {
                panic!("{unit}")
            };
            assert_eq!(enabled, "True", "{unit} is enabled");
            if sha != "-" {
                files.insert(format!("file /etc/systemd/system/{name} 0o644 {sha}"));
            }
        }
        let debian_files: BTreeSet<String> = with_prefix(&debian, "file ")
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(files, debian_files, "flatcar-{mode}-host.bu");
        assert_eq!(
            with_prefix(&flatcar, "unit ")
                .iter()
                .map(|u| u.split(' ').nth(1).unwrap_or_default())
                .collect::<BTreeSet<_>>(),
            BTreeSet::from(["docker.service", "deis-swarm.service"])
        );
        assert!(flatcar.iter().any(|f| flatcar_file(f)), "update.conf");
    }
}

#[test]
fn first_and_other_hosts_differ_in_the_swarm_settings_only() {
    let first = facts(&dir().join("debian-first-host.yaml"));
    let other = facts(&dir().join("debian-other-host.yaml"));
    let same = |facts: &BTreeSet<String>| -> BTreeSet<String> {
        facts
            .iter()
            .filter(|f| !f.contains("/etc/deis/swarm.env") && !f.contains("/deis-swarm.service"))
            .cloned()
            .collect()
    };
    assert_eq!(same(&first), same(&other));
    assert_eq!(first.len(), same(&first).len() + 2);
}
