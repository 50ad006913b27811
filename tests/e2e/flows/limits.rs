//! limits:set (the containers get the memory limit; above the operator's maximum it is
//! refused) and ps:restart (new containers, still answering).

use std::time::Duration;

use super::{Day, app_containers};
use crate::setup::Setup;
use crate::support::docker_lines;

/// The app's containers once the previous release's have drained away: exactly `n`.
async fn settled(day: &Day<'_, impl Setup>, n: usize) -> Vec<String> {
    deis_testkit::eventually(
        Duration::from_secs(30),
        "the old containers drained",
        || async {
            let ids = app_containers(day.setup, &day.app);
            if ids.len() == n {
                Ok(ids)
            } else {
                Err(format!("{ids:?}"))
            }
        },
    )
    .await
}

pub(crate) async fn limits_and_restart(day: &Day<'_, impl Setup>) {
    // Above the operator's maxima (8G a container, 50 containers a type): refused, as is.
    for (args, says) in [
        (
            &["limits:set", "cmd=64G"][..],
            "cmd=64G is above the platform's maximum of 8G per container",
        ),
        (
            &["scale", "cmd=500"][..],
            "cmd=500 is above the platform's maximum of 50 containers per process type",
        ),
    ] {
        let ran = day.owner.run(&day.work, args).await;
        assert!(!ran.ok && ran.out.contains(says), "{args:?}: {}", ran.out);
    }
    day.deis(&["limits:set", "cmd=64M"]).await;
    assert!(day.deis(&["limits"]).await.contains("64M"));
    let ids = settled(day, 3).await;
    for id in &ids {
        let memory = docker_lines(&["inspect", "--format", "{{.HostConfig.Memory}}", id]);
        assert_eq!(memory, ["67108864"], "container {id}");
    }

    let started = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .flat_map(|id| docker_lines(&["inspect", "--format", "{{.State.StartedAt}}", id]))
            .collect()
    };
    let before = started(&ids);
    day.deis(&["ps:restart"]).await;
    let after = started(&settled(day, 3).await);
    assert!(
        after.iter().all(|t| !before.contains(t)),
        "every container started again: {before:?} then {after:?}"
    );
    day.until_app(&day.app, "the app after ps:restart", |_| true)
        .await;
}
