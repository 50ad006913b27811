//! The component images on every host that needs them, copied from the Docker engine of the
//! machine deisctl runs on (where deploy/images/build made them): a Swarm does not carry
//! images, and the platform's registry is itself one of the images.

use bollard::Docker;
use futures_util::StreamExt;

use super::access::Access;
use super::nodes::Node;
use crate::Error;
use crate::platform::engine::not_found;

async fn has_image(docker: &Docker, image: &str, machine: &str) -> Result<bool, Error> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(Error::Message(format!(
            "cannot look for {image} on {machine}: {e}"
        ))),
    }
}

/// Copies each of `images` the hosts lack onto them, hosts in parallel.
pub(super) async fn distribute(
    access: &Access,
    nodes: &[Node],
    images: &[String],
) -> Result<(), Error> {
    let mut local: Option<Docker> = None;
    let mut work = Vec::new();
    for node in nodes {
        let engine = access.node_engine(node).await?;
        let mut missing = Vec::new();
        for image in images {
            if !has_image(&engine, image, &node.machine()).await? {
                missing.push(image.clone());
            }
        }
        if missing.is_empty() {
            continue;
        }
        if local.is_none() {
            local = Some(deis_docker::connect("").await.map_err(|e| {
                Error::Message(format!(
                    "{} lacks {} and this machine has no Docker engine to copy it from ({e}); build the images here with deploy/images/build",
                    node.machine(),
                    missing.join(", ")
                ))
            })?);
        }
        work.push((node.clone(), engine, missing));
    }
    let Some(local) = local else {
        return Ok(());
    };
    for (_, _, missing) in &work {
        for image in missing {
            if !has_image(&local, image, "this machine").await? {
                return Err(Error::Message(format!(
                    "image {image} is neither on the hosts nor on this machine's Docker engine; build it with deploy/images/build (after cargo build --release --workspace)"
                )));
            }
        }
    }
    let copies = work.into_iter().map(|(node, engine, missing)| {
        let local = local.clone();
        async move {
            for image in missing {
                copy(&local, &engine, &image, &node.machine()).await?;
                println!("{image}: copied to {}", node.machine());
            }
            Ok::<(), Error>(())
        }
    });
    for result in futures_util::future::join_all(copies).await {
        result?;
    }
    Ok(())
}

/// Streams `image` from `from` (`docker save`) into `to` (`docker load`).
async fn copy(from: &Docker, to: &Docker, image: &str, machine: &str) -> Result<(), Error> {
    let tarball = from.export_image(image);
    let mut load = to.import_image_stream(
        bollard::query_parameters::ImportImageOptionsBuilder::new()
            .quiet(true)
            .build(),
        tarball,
        None,
    );
    while let Some(step) = load.next().await {
        let step =
            step.map_err(|e| Error::Message(format!("cannot copy {image} to {machine}: {e}")))?;
        if let Some(error) = step.error_detail.and_then(|d| d.message) {
            return Err(Error::Message(format!(
                "cannot copy {image} to {machine}: {error}"
            )));
        }
    }
    Ok(())
}
