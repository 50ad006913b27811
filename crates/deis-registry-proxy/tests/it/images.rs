//! Real clients through the proxy: skopeo pushes and pulls a multi-platform OCI index and
//! single manifests; the Docker engine pushes and pulls with `X-Registry-Auth` credentials
//! made by `deis_runtime`, and pulls from the cache while the registry is down.

use std::path::Path;

use base64::Engine;
use bollard::auth::DockerCredentials;
use deis_runtime::Credential;
use deis_testkit::{TestDocker, skopeo};

use crate::support::{Setup, digest};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Runs skopeo and returns its standard output, or its standard error when it fails.
fn run(args: &[&str]) -> Result<String, String> {
    let out = skopeo(args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn creds(credential: &Credential) -> String {
    format!("{}:{}", credential.username(), credential.password())
}

/// Adds `multi` to an OCI layout holding `amd64` and `arm64`: an index of the two.
fn add_index(layout: &Path) -> String {
    let index_path = layout.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index.json")).expect("json");
    let entries = top["manifests"].as_array().expect("manifests").clone();
    let platforms: Vec<_> = entries
        .iter()
        .map(|entry| {
            let arch = entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .expect("ref name");
            serde_json::json!({
                "mediaType": entry["mediaType"],
                "digest": entry["digest"],
                "size": entry["size"],
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    let nested =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": platforms})
            .to_string();
    let nested_digest = digest(nested.as_bytes());
    let blob = layout
        .join("blobs/sha256")
        .join(nested_digest.trim_start_matches("sha256:"));
    std::fs::write(blob, &nested).expect("write the index blob");
    top["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": OCI_INDEX,
            "digest": nested_digest,
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(&index_path, top.to_string()).expect("write index.json");
    nested_digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_an_index_and_single_manifests() {
    let setup = Setup::start().await;
    let docker = TestDocker::connect().await;
    let amd64 = docker.random_layers_image(2, 200_000).await;
    let arm64 = docker
        .build_image(
            &format!("deis-test-arm-{}:latest", docker.id()),
            &format!("FROM {amd64}\nRUN echo arm64 > /arch\n"),
        )
        .await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let layout = dir.path().join("layout");
    let layout = layout.to_str().expect("utf-8 path");
    for (image, arch) in [(&amd64, "amd64"), (&arm64, "arm64")] {
        run(&[
            "copy",
            &format!("docker-daemon:{image}"),
            &format!("oci:{layout}:{arch}"),
        ])
        .expect("copy from the engine into an OCI layout");
    }
    let index_digest = add_index(Path::new(layout));

    let host = setup.host();
    let push = creds(&setup.push_credential());
    let pull = creds(&setup.pull_credential("go"));
    let target = format!("docker://{host}/go:multi");
    run(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &push,
        &format!("oci:{layout}:multi"),
        &target,
    ])
    .expect("push the index through the proxy");
    let raw = run(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &pull,
        &target,
    ])
    .expect("inspect the index");
    assert_eq!(digest(raw.as_bytes()), index_digest);
    assert!(raw.contains(OCI_INDEX), "{raw}");

    let out = dir.path().join("out");
    run(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &pull,
        &target,
        &format!("oci:{}:multi", out.display()),
    ])
    .expect("pull the index and both images through the proxy");
    let pulled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("pulled index.json"))
            .expect("json");
    assert_eq!(pulled["manifests"][0]["digest"], index_digest.as_str());

    // A single Docker schema 2 manifest, pushed from the engine and pulled to a directory.
    let single = format!("docker://{host}/go:single");
    run(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &push,
        &format!("docker-daemon:{amd64}"),
        &single,
    ])
    .expect("push a single image");
    let single_dir = dir.path().join("single");
    run(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &pull,
        &single,
        &format!("dir:{}", single_dir.display()),
    ])
    .expect("pull a single image");
    assert!(single_dir.join("manifest.json").exists());

    // Without the builder's credential nothing is pushed; another app reads nothing.
    let refused = run(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &pull,
        &format!("docker-daemon:{amd64}"),
        &format!("docker://{host}/go:nope"),
    ])
    .expect_err("an app cannot push");
    assert!(refused.to_lowercase().contains("denied"), "{refused}");
    let other = creds(&setup.pull_credential("python"));
    let refused = run(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &other,
        &target,
    ])
    .expect_err("another app cannot pull");
    assert!(refused.to_lowercase().contains("denied"), "{refused}");
}

/// What the engine takes, made from the helper's `X-Registry-Auth` value.
fn engine_credentials(credential: &Credential, server: &str) -> DockerCredentials {
    let encoded = credential.x_registry_auth(server);
    let json = base64::engine::general_purpose::URL_SAFE
        .decode(encoded)
        .expect("base64url");
    serde_json::from_slice(&json).expect("the engine's credentials")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_pushes_and_pulls_with_registry_auth_and_pulls_while_the_registry_is_down() {
    let mut setup = Setup::start().await;
    let docker = TestDocker::connect().await;
    let built = docker.random_layers_image(3, 1 << 20).await;
    let host = setup.host();
    let repository = format!("{host}/go");
    docker.tag_image(&built, &repository, "v1").await;
    let image = format!("{repository}:v1");

    let builder = engine_credentials(&setup.push_credential(), &host);
    docker
        .push(&repository, "v1", Some(builder))
        .await
        .expect("push through the proxy");
    docker.remove_image(&image).await;
    docker.remove_image(&built).await;

    let go = engine_credentials(&setup.pull_credential("go"), &host);
    let python = engine_credentials(&setup.pull_credential("python"), &host);
    let refused = docker
        .pull(&image, Some(python))
        .await
        .expect_err("another app's image");
    assert!(refused.to_lowercase().contains("denied"), "{refused}");
    docker
        .pull(&image, Some(go.clone()))
        .await
        .expect("pull through the proxy");
    docker
        .client()
        .inspect_image(&image)
        .await
        .expect("the pulled image");

    docker.remove_image(&image).await;
    setup.registry.stop();
    docker
        .pull(&image, Some(go))
        .await
        .expect("pull from the cache while the registry is down");
    let inspected = docker
        .client()
        .inspect_image(&image)
        .await
        .expect("the pulled image");
    assert_eq!(
        inspected.root_fs.and_then(|r| r.layers).map(|l| l.len()),
        Some(4),
        "the base layer and three random ones"
    );
    setup.registry.start_again().await;
}
