//! Images that leave the engine that built them: on a platform with a registry, a `git push`
//! stores the app's image in the registry (behind the registry proxy), and a container started
//! on an engine without the image pulls it back through the proxy.

use super::{Day, use_builder};
use crate::setup::Setup;
use crate::support::{app_name, docker_lines, serving_dockerfile, work_tree};

pub(crate) async fn a_pushed_image_is_pulled_back_through_the_proxy(day: &Day<'_, impl Setup>) {
    let Some(registry) = day.setup.registry() else {
        return;
    };
    let app = app_name("stored");
    let work = work_tree(
        &day.setup.dir().join(&app),
        &[(
            "Dockerfile",
            &serving_dockerfile(&day.setup.base_image(), "stored"),
        )],
    );
    day.owner.ok(&work, &["create", &app]).await;
    use_builder(day.setup, &work, &app);
    let pushed = day.owner.push(&work).await;
    assert!(pushed.ok, "{}", pushed.out);
    assert!(
        pushed.out.contains(&format!("Pushing image to {registry}")),
        "{}",
        pushed.out
    );
    day.until_app(&app, "the pushed app", |b| b == "stored\n")
        .await;
    let repository = format!("{registry}/{app}");
    let on_engine = || {
        docker_lines(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={repository}"),
        ])
    };
    let image = on_engine()
        .first()
        .cloned()
        .expect("the built image, named for the registry");

    // No container left and the image gone from the engine: starting one pulls it again.
    day.owner.ok(&work, &["scale", "cmd=0"]).await;
    docker_lines(&["rmi", "-f", &image]);
    assert!(on_engine().is_empty(), "the image is still on the engine");
    day.owner.ok(&work, &["scale", "cmd=1"]).await;
    day.until_app(&app, "the app on its pulled image", |b| b == "stored\n")
        .await;
    assert_eq!(
        on_engine(),
        std::slice::from_ref(&image),
        "pulled back through the proxy"
    );
    day.owner
        .ok(&work, &["destroy", &format!("--confirm={app}")])
        .await;
}
