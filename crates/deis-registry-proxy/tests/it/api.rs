//! The distribution API through the proxy, spoken by hand: uploads of every kind, ranges,
//! content types, access and the spec's error bodies.

use bytes::Bytes;

use crate::support::{SCHEMA2, Setup, digest, noise};

#[tokio::test]
async fn base_asks_for_a_credential_and_takes_any_valid_one() {
    let setup = Setup::start().await;
    let anonymous = setup.anonymous().get("/v2/").await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(
        anonymous.header("www-authenticate"),
        "Basic realm=\"deis-registry\""
    );
    assert_eq!(anonymous.error_code(), "UNAUTHORIZED");
    assert_eq!(
        anonymous.header("docker-distribution-api-version"),
        "registry/2.0"
    );
    for client in [setup.builder(), setup.app("go")] {
        let answer = client.get("/v2/").await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let go = setup.pull_credential("go");
    let header = format!("Basic {}", base64_of(&format!("python:{}", go.password())));
    let answer = setup
        .anonymous()
        .send("GET", "/v2/", &[("authorization", &header)], Bytes::new())
        .await;
    assert_eq!(answer.status, 401, "another app's password: {answer:?}");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn monolithic_and_chunked_uploads_then_ranges_of_what_they_stored() {
    let setup = Setup::start().await;
    let builder = setup.builder();

    // Monolithic: one POST with ?digest=.
    let whole = noise(1, 300_000);
    let whole_digest = builder.push_blob("go", &whole).await;

    // Chunked: POST, two PATCHes with Content-Range, PUT with ?digest=.
    let chunked = noise(2, 3 << 20);
    let started = builder
        .send("POST", "/v2/go/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!(started.status, 202, "{started:?}");
    let mut location = started.header("location").to_owned();
    assert!(
        location.starts_with("/v2/go/blobs/uploads/"),
        "the upload comes back through the proxy: {location}"
    );
    let (first, second) = chunked.split_at(1 << 20);
    let mut offset = 0;
    for chunk in [first, second] {
        let range = format!("{offset}-{}", offset + chunk.len() - 1);
        let patched = builder
            .send(
                "PATCH",
                &location,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-range", &range),
                ],
                Bytes::copy_from_slice(chunk),
            )
            .await;
        assert_eq!(patched.status, 202, "{patched:?}");
        assert_eq!(
            patched.header("range"),
            format!("0-{}", offset + chunk.len() - 1)
        );
        location = patched.header("location").to_owned();
        assert!(location.starts_with("/v2/go/"), "{location}");
        offset += chunk.len();
    }
    let chunked_digest = digest(&chunked);
    let separator = if location.contains('?') { '&' } else { '?' };
    let finished = builder
        .send(
            "PUT",
            &format!("{location}{separator}digest={chunked_digest}"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(finished.status, 201, "{finished:?}");
    assert_eq!(finished.header("docker-content-digest"), chunked_digest);
    assert_eq!(
        finished.header("location"),
        format!("/v2/go/blobs/{chunked_digest}")
    );

    let app = setup.app("go");
    // A range of a blob not cached yet, then the whole (cached), then ranges from the cache.
    for (blob, bytes) in [(&chunked_digest, &chunked), (&whole_digest, &whole)] {
        let path = format!("/v2/go/blobs/{blob}");
        let part = app
            .send("GET", &path, &[("range", "bytes=10-99")], Bytes::new())
            .await;
        assert_eq!(part.status, 206, "{part:?}");
        assert_eq!(
            part.header("content-range"),
            format!("bytes 10-99/{}", bytes.len())
        );
        assert_eq!(&part.body[..], &bytes[10..100]);
        let full = app.get(&path).await;
        assert_eq!(full.status, 200);
        assert_eq!(full.header("docker-content-digest"), blob.as_str());
        assert_eq!(&full.body[..], &bytes[..]);
        let tail = app
            .send("GET", &path, &[("range", "bytes=-5")], Bytes::new())
            .await;
        assert_eq!(&tail.body[..], &bytes[bytes.len() - 5..]);
        let beyond = format!("bytes={}-", bytes.len());
        let unsatisfiable = app
            .send("GET", &path, &[("range", &beyond)], Bytes::new())
            .await;
        assert_eq!(unsatisfiable.status, 416, "{unsatisfiable:?}");
        let head = app.send("HEAD", &path, &[], Bytes::new()).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), bytes.len().to_string());
        assert!(head.body.is_empty());
    }
    assert!(
        setup
            .metric("deis_registry_proxy_cache_hits_total{kind=\"blob\"}")
            .await
            >= 2.0
    );
}

#[tokio::test]
async fn a_cross_repository_mount_passes_through() {
    let setup = Setup::start().await;
    let builder = setup.builder();
    let blob = builder.push_blob("go", &noise(3, 1000)).await;
    let mounted = builder
        .send(
            "POST",
            &format!("/v2/python/blobs/uploads/?mount={blob}&from=go"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(mounted.status, 201, "{mounted:?}");
    assert_eq!(
        mounted.header("location"),
        format!("/v2/python/blobs/{blob}")
    );
    let pulled = setup
        .app("python")
        .get(&format!("/v2/python/blobs/{blob}"))
        .await;
    assert_eq!(pulled.status, 200);
}

#[tokio::test]
async fn manifests_keep_their_content_types_and_digests() {
    let setup = Setup::start().await;
    let builder = setup.builder();
    let image = builder.push_image("go", "v1", &[noise(4, 5000)]).await;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": SCHEMA2,
            "digest": image.manifest,
            "size": setup.direct().get(&format!("/v2/go/manifests/{}", image.manifest)).await.body.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
    .to_string();
    let index_type = "application/vnd.oci.image.index.v1+json";
    let index_digest = builder
        .push_manifest("go", "multi", index_type, index.as_bytes())
        .await;
    let app = setup.app("go");
    for (reference, media_type, digest) in [
        ("v1", SCHEMA2, &image.manifest),
        (image.manifest.as_str(), SCHEMA2, &image.manifest),
        ("multi", index_type, &index_digest),
        (index_digest.as_str(), index_type, &index_digest),
    ] {
        for method in ["GET", "HEAD"] {
            let answer = app
                .send(
                    method,
                    &format!("/v2/go/manifests/{reference}"),
                    &[("accept", SCHEMA2), ("accept", index_type)],
                    Bytes::new(),
                )
                .await;
            assert_eq!(answer.status, 200, "{method} {reference}: {answer:?}");
            assert_eq!(answer.header("content-type"), media_type, "{reference}");
            assert_eq!(answer.header("docker-content-digest"), digest.as_str());
            if method == "GET" {
                assert_eq!(crate::support::digest(&answer.body), *digest);
            }
        }
    }
    let tags = app.get("/v2/go/tags/list").await;
    assert_eq!(tags.status, 200);
    let tags: serde_json::Value = serde_json::from_slice(&tags.body).expect("json");
    let mut tags: Vec<&str> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort();
    assert_eq!(tags, ["multi", "v1"]);
    let catalog = builder.get("/v2/_catalog?n=10").await;
    assert_eq!(catalog.status, 200, "{catalog:?}");
    assert!(catalog.text().contains("\"go\""), "{catalog:?}");
    let deleted = builder
        .send(
            "DELETE",
            &format!("/v2/go/manifests/{index_digest}"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(deleted.status, 202, "{deleted:?}");
    let gone = app.get(&format!("/v2/go/manifests/{index_digest}")).await;
    assert_eq!(
        gone.status, 404,
        "a deleted manifest is not served from the cache"
    );
    assert_eq!(gone.error_code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn pushing_takes_the_builders_credential() {
    let setup = Setup::start().await;
    let manifest = [("content-type", SCHEMA2)];
    for (client, status, code) in [
        (setup.anonymous(), 401, "UNAUTHORIZED"),
        (setup.app("go"), 403, "DENIED"),
    ] {
        for (method, path, headers) in [
            ("POST", "/v2/go/blobs/uploads/", &[][..]),
            ("PUT", "/v2/go/manifests/v1", &manifest[..]),
            (
                "DELETE",
                "/v2/go/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000",
                &[][..],
            ),
            ("GET", "/v2/_catalog", &[][..]),
        ] {
            let answer = client
                .send(method, path, headers, Bytes::from_static(b"{}"))
                .await;
            assert_eq!(answer.status, status, "{method} {path}: {answer:?}");
            assert_eq!(answer.error_code(), code, "{method} {path}");
            assert_eq!(
                answer.header("content-type"),
                "application/json; charset=utf-8"
            );
        }
    }
    assert_eq!(
        setup.direct().get("/v2/_catalog").await.text(),
        "{\"repositories\":[]}\n"
    );
}

#[tokio::test]
async fn an_app_pulls_its_own_repository_only() {
    let setup = Setup::start().await;
    let builder = setup.builder();
    let go = builder.push_image("go", "v1", &[noise(5, 100)]).await;
    builder.push_image("python", "v1", &[noise(6, 100)]).await;
    builder.push_image("other/go", "v1", &[noise(7, 100)]).await;
    let app = setup.app("go");
    let ok = app.get("/v2/go/manifests/v1").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    for path in [
        "/v2/python/manifests/v1".to_owned(),
        "/v2/other/go/manifests/v1".to_owned(),
        format!("/v2/python/blobs/{}", go.layers[0]),
        "/v2/python/tags/list".to_owned(),
    ] {
        let denied = app.get(&path).await;
        assert_eq!(denied.status, 403, "{path}: {denied:?}");
        assert_eq!(denied.error_code(), "DENIED");
    }
    // The builder reads everything.
    assert_eq!(builder.get("/v2/other/go/manifests/v1").await.status, 200);
}

#[tokio::test]
async fn bad_requests_get_the_specs_error_bodies() {
    let setup = Setup::start().await;
    let app = setup.app("go");
    let unknown_blob = format!("/v2/go/blobs/{}", digest(b"nothing"));
    for (path, status, code) in [
        (unknown_blob.as_str(), 404, "BLOB_UNKNOWN"),
        ("/v2/go/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("/v2/Go/manifests/v1", 400, "NAME_INVALID"),
        ("/v2/go/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        ("/v2/go/manifests/-bad", 400, "TAG_INVALID"),
        ("/v3/", 404, "NOT_FOUND"),
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        assert_eq!(answer.error_code(), code, "{path}");
    }
    let big = vec![b' '; (4 << 20) + 1];
    let too_big = setup
        .builder()
        .send(
            "PUT",
            "/v2/go/manifests/v1",
            &[("content-type", SCHEMA2)],
            big,
        )
        .await;
    assert_eq!(too_big.status, 413, "{too_big:?}");
    assert_eq!(too_big.error_code(), "SIZE_INVALID");
}
