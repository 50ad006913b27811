//! A buildpack app: no Dockerfile, BUILDPACK_URL naming a git repository (served by
//! `git daemon`, so the builder fetches it the same way in a container or not).

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
    let host = day.setup.router().ip();
    let port = deis_testkit::free_port();
    let _daemon = GitDaemon(
        Command::new("git")
            .args(["daemon", "--export-all", "--reuseaddr"])
            .arg(format!("--base-path={}", path_str(&base)))
            .arg(format!("--listen={host}"))
            .arg(format!("--port={port}"))
            .arg(path_str(&base))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon runs"),
    );
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
    day.owner
        .ok(&work, &["destroy", &format!("--confirm={site}")])
        .await;
}
