//! Buildpack apps: no Dockerfile, BUILDPACK_URL naming a git repository served by `git daemon`
//! on a host outside this one, which the build container clones as an app would reach it (the
//! same repository served on this host is out of the build's reach); or naming a buildpack in
//! the operator's folder, given the app's config in its env directory, its cache kept from one
//! build to the next.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Day;
use crate::setup::Setup;
use crate::support::{app_name, commit, path_str, work_tree};

const DETECT: &str = "#!/bin/sh\n[ -f \"$1/index.html\" ] && echo Static\n";
const COMPILE: &str = "#!/bin/sh\nset -e\nmkdir -p \"$1/public\"\ncp \"$1/index.html\" \"$1/public/index.html\"\necho '-----> Static site ready'\n";
/// A buildpack written in shell that also keeps a count of its builds in its cache directory
/// and says the app's `GREETING` from its env directory.
const COMPILE_CACHED: &str = "#!/bin/sh\nset -e\nbuild=$1 cache=$2 env=$3\nif [ -f \"$cache/builds\" ]; then echo \"cache: reused after $(cat \"$cache/builds\") build(s)\"; else echo 'cache: empty'; fi\necho $(( $(cat \"$cache/builds\" 2>/dev/null || echo 0) + 1 )) > \"$cache/builds\"\necho \"greeting from env dir: $(cat \"$env/GREETING\")\"\nmkdir -p \"$build/public\"\ncp \"$build/index.html\" \"$build/public/index.html\"\necho '-----> Static site ready'\n";
const RELEASE: &str = "#!/bin/sh\ncat <<EOF\n---\ndefault_process_types:\n  web: httpd -f -p \\$PORT -h /app/public\nEOF\n";

/// `git daemon` serving `base`'s repositories, in a process group of its own; the whole group
/// is killed when dropped (`git` runs `git-daemon` as a child, which killing `git` alone left
/// running).
struct GitDaemon(std::process::Child);

impl Drop for GitDaemon {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.wait();
    }
}

impl GitDaemon {
    /// `git daemon` of `command` (`git`, here or on another host) serving `base` on `ip:port`.
    fn start(
        mut command: Command,
        base: &std::path::Path,
        ip: std::net::Ipv4Addr,
        port: u16,
    ) -> GitDaemon {
        GitDaemon(
            command
                .args(["daemon", "--export-all", "--reuseaddr"])
                .arg(format!("--base-path={}", path_str(base)))
                .arg(format!("--listen={ip}"))
                .arg(format!("--port={port}"))
                .arg(path_str(base))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("git daemon runs"),
        )
    }
}

pub(crate) async fn buildpack_app(day: &Day<'_, impl Setup>) {
    let base = day.setup.dir().join("buildpacks");
    work_tree(
        &base.join("static"),
        &[
            ("bin/detect", DETECT),
            ("bin/compile", COMPILE),
            ("bin/release", RELEASE),
        ],
    );
    let outside = deis_testkit::Outside::create();
    let host = outside.ip();
    let port = deis_testkit::free_port();
    let _daemon = GitDaemon::start(outside.command("git"), &base, host, port);
    let site = app_name("site");
    let work = work_tree(
        &day.setup.dir().join(&site),
        &[("index.html", "static-site\n")],
    );
    day.owner.ok(&work, &["create", &site]).await;
    super::use_builder(day.setup, &work, &site);
    day.owner
        .ok(
            &work,
            &[
                "config:set",
                &format!("BUILDPACK_URL=git://{host}:{port}/static"),
            ],
        )
        .await;
    let pushed = deis_testkit::eventually(
        std::time::Duration::from_secs(30),
        "a push once git daemon listens",
        || async {
            let pushed = day.owner.push(&work).await;
            if pushed.ok {
                Ok(pushed)
            } else {
                Err(pushed.out)
            }
        },
    )
    .await;
    assert!(pushed.out.contains("Static site ready"), "{}", pushed.out);
    day.until_app(&site, "the buildpack app", |b| b == "static-site\n")
        .await;

    // The same buildpack served on this host: the build container may not reach it.
    let _on_host = GitDaemon::start(Command::new("git"), &base, outside.host_ip(), port);
    day.owner
        .ok(
            &work,
            &[
                "config:set",
                &format!("BUILDPACK_URL=git://{}:{port}/static", outside.host_ip()),
            ],
        )
        .await;
    commit(&work, &[("index.html", "changed\n")], "changed");
    let refused = day.owner.push(&work).await;
    assert!(
        !refused.ok,
        "a build fetched from this host: {}",
        refused.out
    );
    assert!(refused.out.contains("cannot be fetched"), "{}", refused.out);
    day.until_app(&site, "the release before", |b| b == "static-site\n")
        .await;
    day.owner
        .ok(&work, &["destroy", &format!("--confirm={site}")])
        .await;
}

pub(crate) async fn a_custom_buildpack_builds_and_keeps_its_cache(
    setup: &impl Setup,
    folder: &Path,
) {
    let token = setup.user("static").await;
    let key = setup.add_key(&token, "laptop").await;
    let app = app_name("static");
    setup.create_app(&token, &app).await;
    let buildpack = work_tree(
        &folder.join(&app),
        &[
            ("bin/detect", DETECT),
            ("bin/compile", COMPILE_CACHED),
            ("bin/release", RELEASE),
        ],
    );
    let config = serde_json::json!({"values": {
        "BUILDPACK_URL": format!("file://{}", path_str(&buildpack)),
        "GREETING": "hello",
    }})
    .to_string();
    let path = format!("/v1/apps/{app}/config/");
    let (status, body) = setup.api("POST", &path, Some(&token), &config).await;
    assert_eq!(status, 201, "{body}");
    let work = work_tree(&setup.dir().join(&app), &[("index.html", "<h1>v1</h1>\n")]);

    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("-----> Fetching custom buildpack"),
        "{output}"
    );
    assert!(output.contains("-----> Static app detected"), "{output}");
    assert!(output.contains("cache: empty"), "{output}");
    assert!(output.contains("greeting from env dir: hello"), "{output}");
    assert!(output.contains("-----> Process types -> web"), "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(setup.get_app(&app).await, (200, "<h1>v1</h1>\n".to_owned()));

    commit(&work, &[("index.html", "<h1>v2</h1>\n")], "second");
    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("cache: reused after 1 build(s)"),
        "{output}"
    );
    assert_eq!(setup.get_app(&app).await, (200, "<h1>v2</h1>\n".to_owned()));
}
