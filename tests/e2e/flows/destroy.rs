//! destroy: nothing is left behind, not the containers, the routes, the images nor the
//! repository.

use super::{Day, app_containers};
use crate::setup::Setup;
use crate::support::docker_lines;

pub(crate) async fn destroy_leaves_nothing(day: &Day<'_, impl Setup>) {
    assert!(day.setup.has_repository(&day.app));
    day.deis(&["destroy", &format!("--confirm={}", day.app)])
        .await;
    assert_eq!(app_containers(day.setup, &day.app), Vec::<String>::new());
    assert_eq!(day.setup.get_app(&day.app).await.0, 404, "no route is left");
    let images = docker_lines(&["images", "-q", &day.app]);
    assert_eq!(images, Vec::<String>::new(), "the app's images are removed");
    deis_testkit::eventually(
        std::time::Duration::from_secs(30),
        "the repository is removed",
        || async {
            if day.setup.has_repository(&day.app) {
                Err("still there".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await;
}
