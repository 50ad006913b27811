//! perms: a collaborator can deploy the app; a stranger can neither see nor push it.

use super::Day;
use crate::setup::Setup;
use crate::support::{Deis, commit, path_str};

pub(crate) async fn collaborator_deploys_stranger_cannot_see(day: &Day<'_, impl Setup>) {
    let collab = Deis::register(day.setup, "collab").await;
    let stranger = Deis::register(day.setup, "stranger").await;
    day.deis(&["perms:create", "collab"]).await;
    assert!(day.deis(&["perms:list"]).await.contains("collab"));

    // The collaborator clones the owner's tree and deploys a change.
    let work = day.setup.dir().join("collab-work");
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", &path_str(&day.work), &path_str(&work)])
        .status()
        .expect("git clone runs");
    assert!(cloned.success());
    collab.ok(&work, &["git:remote", "-a", &day.app]).await;
    super::use_builder(day.setup, &work, &day.app);
    let dockerfile = std::fs::read_to_string(work.join("Dockerfile")).expect("Dockerfile");
    commit(
        &work,
        &[("Dockerfile", &format!("{dockerfile}# by collab\n"))],
        "collab",
    );
    let pushed = collab.push(&work).await;
    assert!(pushed.ok, "{}", pushed.out);
    assert!(
        collab
            .ok(&work, &["releases", "-a", &day.app])
            .await
            .contains("collab")
    );

    // A stranger sees nothing and cannot push.
    let info = stranger
        .run(day.setup.dir(), &["info", "-a", &day.app])
        .await;
    assert!(!info.ok, "{}", info.out);
    let apps = stranger.ok(day.setup.dir(), &["apps"]).await;
    assert!(!apps.contains(&day.app), "{apps}");
    let stranger_work = day.setup.dir().join("stranger-work");
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", &path_str(&work), &path_str(&stranger_work)])
        .status()
        .expect("git clone runs");
    assert!(cloned.success());
    let pushed = stranger.push(&stranger_work).await;
    assert!(!pushed.ok, "a stranger's push is refused: {}", pushed.out);
}
