//! Listing containers by label.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::DockerError;

/// The containers (stopped ones too when `all`) carrying every `key=value` of `labels`.
pub async fn list_labelled(
    docker: &Docker,
    labels: &[String],
    all: bool,
) -> Result<Vec<ContainerSummary>, DockerError> {
    let filters = HashMap::from([("label".to_owned(), labels.to_vec())]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(all)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::call(format!("listing containers labelled {labels:?}"), e))
}

/// The images matching `filters` (`reference`, `label`, ...: each a list of values).
pub async fn list_images(
    docker: &Docker,
    filters: &[(&str, Vec<String>)],
) -> Result<Vec<bollard::models::ImageSummary>, DockerError> {
    let filters: HashMap<String, Vec<String>> = filters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    docker
        .list_images(Some(
            bollard::query_parameters::ListImagesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::call(format!("listing images {filters:?}"), e))
}
