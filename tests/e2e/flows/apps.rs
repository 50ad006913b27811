//! create, git push (Dockerfile), config:set/unset, scale (requests reach every container),
//! releases and rollback.

use std::collections::BTreeSet;

use super::Day;
use crate::setup::Setup;

pub(crate) async fn push_config_scale_and_roll_back(day: &Day<'_, impl Setup>) {
    let created = day.deis(&["create", &day.app]).await;
    assert!(created.contains("Git remote deis added"), "{created}");
    super::use_builder(day.setup, &day.work, &day.app);
    let pushed = day.owner.push(&day.work).await;
    assert!(pushed.ok, "{}", pushed.out);
    assert!(pushed.out.contains("deployed to Deis"), "{}", pushed.out);
    let body = day
        .until_app(&day.app, "the pushed app", |b| b.starts_with("hello "))
        .await;
    assert!(body.starts_with("hello "), "{body}");

    // A config change is a new release, live at once; unset, the old value is gone.
    day.deis(&["config:set", "GREETING=bonjour"]).await;
    day.until_app(&day.app, "the new config", |b| b.starts_with("bonjour "))
        .await;
    let config = day.deis(&["config"]).await;
    assert!(
        config.contains("GREETING") && config.contains("bonjour"),
        "{config}"
    );
    day.deis(&["config:unset", "GREETING"]).await;
    day.until_app(&day.app, "the config without GREETING", |b| {
        b.starts_with("hello ")
    })
    .await;
    assert!(!day.deis(&["config"]).await.contains("bonjour"));

    // Three containers, and requests reach each of them.
    day.deis(&["scale", "cmd=3"]).await;
    let ps = day.deis(&["ps"]).await;
    assert_eq!(ps.matches(" up ").count(), 3, "{ps}");
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        if let (200, body) = day.setup.get_app(&day.app).await {
            seen.insert(body);
        }
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "answers from three containers: {seen:?}");

    // Releases list every change; a rollback brings back the config of v3 (bonjour).
    let releases = day.deis(&["releases"]).await;
    for v in ["v1", "v2", "v3", "v4"] {
        assert!(releases.contains(v), "{releases}");
    }
    let rolled = day.deis(&["rollback", "v3"]).await;
    assert!(rolled.contains("v5"), "{rolled}");
    day.until_app(&day.app, "the rolled-back config", |b| {
        b.starts_with("bonjour ")
    })
    .await;
    let ps = day.deis(&["ps"]).await;
    assert_eq!(ps.matches(" up (v5").count(), 3, "the scale is kept: {ps}");
}
