//! A buildpack app: no Dockerfile, BUILDPACK_URL naming a git repository served by `git daemon`
//! on a host outside this one, which the build container clones as an app would reach it; the
//! same repository served on this host is out of the build's reach.

use std::process::{Command, Stdio};

use super::{Day, path_str};
use crate::setup::Setup;
use crate::support::work_tree;

const DETECT: &str = "#!/bin/sh\n[ -f \"$1/index.html\" ] && echo Static\n";
const COMPILE: &str = "#!/bin/sh\nset -e\nmkdir -p \"$1/public\"\ncp \"$1/index.html\" \"$1/public/index.html\"\necho '-----> Static site ready'\n";
const RELEASE: &str = "#!/bin/sh\ncat <<EOF\n---\ndefault_process_types:\n  web: httpd -f -p \\$PORT -h /app/public\nEOF\n";

/// `git daemon` serving `base`'s repositories; killed when dropped.
struct GitDaemon(std::process::Child);

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
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
    let work = work_tree(
        &day.setup.dir().join("site"),
        &[("index.html", "static-site\n")],
    );
    let site = super::app_name("site");
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
    crate::support::commit(&work, &[("index.html", "changed\n")], "changed");
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
