//! The locally made base image runs, and the fixture removes what a test created.

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder,
};
use deis_testkit::{TEST_LABEL, TestDocker};
use futures_util::TryStreamExt;

#[tokio::test]
async fn the_base_image_runs_and_cleanup_removes_everything_labelled() {
    let docker = TestDocker::connect().await;
    let image = docker.base_image().await;
    let client = docker.client();
    let name = format!("deis-test-{}", docker.id());
    let container = client
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["sh".into(), "-c".into(), "echo hello from $0".into()]),
                labels: Some(docker.labels()),
                ..Default::default()
            },
        )
        .await
        .expect("create a container");
    client
        .start_container(&container.id, None)
        .await
        .expect("start it");
    let exits: Vec<_> = client
        .wait_container(&container.id, None)
        .try_collect()
        .await
        .expect("wait for it");
    assert_eq!(exits.last().map(|e| e.status_code), Some(0));
    let logs: Vec<_> = client
        .logs(
            &container.id,
            Some(LogsOptionsBuilder::new().stdout(true).build()),
        )
        .try_collect()
        .await
        .expect("logs");
    let text: String = logs.iter().map(|l| l.to_string()).collect();
    assert_eq!(text.trim(), "hello from sh");

    docker.cleanup().await;
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{TEST_LABEL}={}", docker.id())],
    )]);
    let left = client
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers");
    assert!(left.is_empty(), "containers left: {left:?}");
    let images = client
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .expect("list images");
    assert!(images.is_empty(), "images left: {images:?}");
}
