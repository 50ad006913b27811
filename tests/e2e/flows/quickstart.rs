//! The README's quick start: the example app (`examples/hello`) built as the README says, a
//! static binary with `rustc`, then `deis create` and `git push deis master`: it answers.

use std::path::Path;

use super::{Day, use_builder};
use crate::setup::Setup;
use crate::support::{app_name, commit, work_tree};

/// The README's build line for the example app.
pub(crate) const BUILD: [&str; 8] = [
    "-O",
    "-C",
    "target-feature=+crt-static",
    "-C",
    "strip=symbols",
    "-o",
    "hello",
    "hello.rs",
];

pub(crate) async fn the_readme_example_app(day: &Day<'_, impl Setup>) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let read = |name: &str| {
        std::fs::read_to_string(example.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let work = work_tree(
        &day.setup.dir().join("quickstart"),
        &[
            ("hello.rs", &read("hello.rs")),
            ("Dockerfile", &read("Dockerfile")),
        ],
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let built = std::process::Command::new(rustc)
        .args(BUILD)
        .current_dir(&work)
        .output()
        .expect("rustc runs");
    assert!(
        built.status.success(),
        "the README's rustc line: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    commit(&work, &[], "the static binary");

    let app = app_name("hello");
    day.owner.ok(&work, &["create", &app]).await;
    use_builder(day.setup, &work, &app);
    let pushed = day.owner.push(&work).await;
    assert!(pushed.ok, "{}", pushed.out);
    day.until_app(&app, "the example app", |body| {
        body.starts_with("Hello from Deis (")
    })
    .await;
    // The operator follows the push and its deploy in the platform's log by their span fields.
    let log = day.setup.platform_log();
    let lines = |span: &str, field: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("{span}{{"))
                    && l.contains(&format!("app={app}"))
                    && l.contains(field)
            })
            .count()
    };
    assert!(
        lines("push", " sha=") > 0,
        "no push{{app={app} sha=..}} line in:\n{log}"
    );
    assert!(
        lines("deploy", " release=") > 0,
        "no deploy{{app={app} release=..}} line in:\n{log}"
    );
    day.deis(&["destroy", "-a", &app, &format!("--confirm={app}")])
        .await;
}
