//! Removing what the platform made, the same way everywhere.

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;

use crate::DockerError;

/// Removes a container whatever its state, with its anonymous volumes; one already gone is
/// fine.
pub async fn remove_container(docker: &Docker, id_or_name: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id_or_name, Some(options)).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(DockerError::call(format!("{id_or_name} (remove)"), e)),
    }
}
