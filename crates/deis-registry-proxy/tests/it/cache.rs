//! The blob cache against a real registry: served while the registry is down, across a
//! restart of the proxy; damaged files detected and fetched again; content that does not
//! match its digest never served; one download for concurrent pulls; tags checked on every
//! request; least recently used blobs evicted.

use std::time::Duration;

use bytes::Bytes;
use deis_testkit::eventually;

use crate::support::{Setup, noise};

#[tokio::test]
async fn what_was_pulled_is_served_while_the_registry_is_down_even_after_a_restart() {
    let mut setup = Setup::start().await;
    let image = setup
        .builder()
        .push_image("go", "v1", &[noise(10, 200_000), noise(11, 300_000)])
        .await;
    let never_pulled = setup.builder().push_blob("go", &noise(12, 1000)).await;
    let app = setup.app("go");
    let pull = |app: crate::support::Client, manifest: String, layers: Vec<String>| async move {
        let by_tag = app.get("/v2/go/manifests/v1").await;
        assert_eq!(by_tag.status, 200, "{by_tag:?}");
        let by_digest = app.get(&format!("/v2/go/manifests/{manifest}")).await;
        assert_eq!(by_digest.status, 200, "{by_digest:?}");
        for layer in &layers {
            let blob = app.get(&format!("/v2/go/blobs/{layer}")).await;
            assert_eq!(blob.status, 200, "{blob:?}");
            assert_eq!(crate::support::digest(&blob.body), *layer);
        }
    };
    pull(app.clone(), image.manifest.clone(), image.layers.clone()).await;

    setup.registry.stop();
    pull(app.clone(), image.manifest.clone(), image.layers.clone()).await;
    let missing = app.get(&format!("/v2/go/blobs/{never_pulled}")).await;
    assert_eq!(missing.status, 503, "{missing:?}");
    assert_eq!(missing.error_code(), "UNAVAILABLE");
    assert_eq!(app.get("/v2/go/manifests/v2").await.status, 503);

    // The index is rebuilt from the files.
    setup.stop_proxy().await;
    setup.start_proxy().await;
    pull(app.clone(), image.manifest.clone(), image.layers.clone()).await;
    assert!(setup.metric("deis_registry_proxy_cache_size_bytes").await >= 500_000.0);
    setup.registry.start_again().await;
}

/// Damages the cached copy of a blob in place (same size, one byte changed), fetches it
/// through the proxy and checks that the registry's bytes came back, from its `fetches`-th fetch.
async fn damage_and_pull(setup: &Setup, blob: &str, bytes: &[u8], fetches: usize) {
    let file = setup.cached_blob(blob);
    let mut damaged = std::fs::read(&file).expect("cached blob");
    damaged[1000] ^= 0xff;
    std::fs::write(&file, &damaged).expect("damage the cached blob");
    let path = format!("/v2/go/blobs/{blob}");
    let again = setup.app("go").get(&path).await;
    assert_eq!(again.status, 200);
    assert!(
        again.body == bytes,
        "the registry's bytes, not the damaged ones"
    );
    let failures = "deis_registry_proxy_verification_failures_total{stage=\"disk\"}";
    assert_eq!(setup.metric(failures).await, 1.0);
    eventually(
        Duration::from_secs(5),
        "the fetch in the registry's log",
        || {
            let n = setup.registry.requests("GET", &path);
            async move {
                if n == fetches {
                    Ok(())
                } else {
                    Err(format!("{n} fetches"))
                }
            }
        },
    )
    .await;
    assert!(std::fs::read(&file).expect("cached again") == bytes);
}

#[tokio::test]
async fn a_damaged_cache_file_is_detected_fetched_again_and_never_served() {
    let mut setup = Setup::start().await;
    let bytes = noise(20, 1 << 20);
    let blob = setup.builder().push_blob("go", &bytes).await;
    let path = format!("/v2/go/blobs/{blob}");
    assert_eq!(setup.app("go").get(&path).await.body, bytes);

    // Caught by the checksum kept since the download.
    damage_and_pull(&setup, &blob, &bytes, 2).await;
    // Caught by the SHA-256 of the first serve after a restart.
    setup.stop_proxy().await;
    setup.start_proxy().await;
    damage_and_pull(&setup, &blob, &bytes, 3).await;

    // Damaged while the registry is down: an error, not the damaged bytes.
    let file = setup.cached_blob(&blob);
    let mut damaged = bytes.clone();
    damaged[5] ^= 0x01;
    std::fs::write(&file, &damaged).expect("damage the cached blob");
    setup.registry.stop();
    let down = setup.app("go").get(&path).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(!file.exists(), "the damaged file is removed");
    setup.registry.start_again().await;
}

#[tokio::test]
async fn a_blob_the_registry_sends_wrong_is_cut_off_and_not_kept() {
    let setup = Setup::start().await;
    let bytes = noise(30, 2 << 20);
    let blob = setup.builder().push_blob("go", &bytes).await;
    let stored = setup.registry.blob_file(&blob);
    let mut wrong = std::fs::read(&stored).expect("the registry's file");
    wrong[(1 << 20) + 7] ^= 0x01;
    std::fs::write(&stored, &wrong).expect("damage the registry's file");

    let path = format!("/v2/go/blobs/{blob}");
    let cut = setup
        .app("go")
        .try_send("GET", &path, &[], Bytes::new())
        .await;
    // Either the stream was cut (no complete answer), or the failure came before the answer.
    if let Ok(answer) = cut {
        assert_ne!(
            answer.status, 200,
            "a blob that does not match its digest is never served"
        );
    }
    assert!(!setup.cached_blob(&blob).exists(), "nor kept");
    assert_eq!(
        setup
            .metric("deis_registry_proxy_verification_failures_total{stage=\"download\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn five_concurrent_pulls_of_an_uncached_blob_fetch_it_once() {
    let setup = Setup::with_relay().await;
    let relay = setup.relay.as_ref().expect("a relay");
    let bytes = noise(40, 16 << 20);
    let blob = setup.builder().push_blob("go", &bytes).await;
    let path = format!("/v2/go/blobs/{blob}");
    let app = setup.app("go");

    // The registry's answer is held back until all five pulls wait for it.
    relay.close();
    let pulls: Vec<_> = (0..5)
        .map(|_| {
            let (app, path) = (app.clone(), path.clone());
            tokio::spawn(async move { app.get(&path).await })
        })
        .collect();
    let misses = "deis_registry_proxy_cache_misses_total{kind=\"blob\"}";
    eventually(Duration::from_secs(10), "five pulls waiting", || async {
        let n = setup.metric(misses).await;
        if n == 5.0 {
            Ok(())
        } else {
            Err(format!("{n} waiting"))
        }
    })
    .await;
    relay.open();
    for pull in pulls {
        let pulled = pull.await.expect("pull task");
        assert_eq!(pulled.status, 200);
        assert!(pulled.body == bytes, "every pull gets the whole blob");
    }
    let fetches = eventually(
        Duration::from_secs(5),
        "the registry's log of the fetch",
        || {
            let n = setup.registry.requests("GET", &path);
            async move {
                if n >= 1 {
                    Ok(n)
                } else {
                    Err("no fetch logged".to_owned())
                }
            }
        },
    )
    .await;
    assert_eq!(fetches, 1, "one fetch from the registry for five pulls");
    for (series, value) in [
        (
            "deis_registry_proxy_upstream_fetches_total{kind=\"blob\"}",
            1.0,
        ),
        ("deis_registry_proxy_cache_hits_total{kind=\"blob\"}", 0.0),
        (
            "deis_registry_proxy_served_bytes_total{source=\"upstream\"}",
            5.0 * bytes.len() as f64,
        ),
    ] {
        assert_eq!(setup.metric(series).await, value, "{series}");
    }
}

#[tokio::test]
async fn tags_are_asked_of_the_registry_on_every_request() {
    let setup = Setup::start().await;
    let first = setup
        .builder()
        .push_image("go", "v1", &[noise(50, 100)])
        .await;
    let app = setup.app("go");
    let seen = app.get("/v2/go/manifests/v1").await;
    assert_eq!(seen.header("docker-content-digest"), first.manifest);
    // Moved behind the proxy's back.
    let second = setup
        .direct()
        .push_image("go", "v1", &[noise(51, 100)])
        .await;
    let seen = app.get("/v2/go/manifests/v1").await;
    assert_eq!(seen.header("docker-content-digest"), second.manifest);
    eventually(
        Duration::from_secs(5),
        "both requests in the registry's log",
        || {
            let n = setup.registry.requests("GET", "/v2/go/manifests/v1");
            async move {
                if n == 2 {
                    Ok(())
                } else {
                    Err(format!("{n} requests"))
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn the_least_recently_used_blobs_make_room() {
    let mut setup = Setup::with_cache_max(3 << 20).await;
    let builder = setup.builder();
    let app = setup.app("go");
    let mut blobs = Vec::new();
    for seed in 0..3 {
        blobs.push(builder.push_blob("go", &noise(60 + seed, 1 << 20)).await);
    }
    for blob in &blobs {
        assert_eq!(app.get(&format!("/v2/go/blobs/{blob}")).await.status, 200);
    }
    // Use the first again, so the second is the least recently used.
    assert_eq!(
        app.get(&format!("/v2/go/blobs/{}", blobs[0])).await.status,
        200
    );
    let fourth = builder.push_blob("go", &noise(63, 1 << 20)).await;
    assert_eq!(app.get(&format!("/v2/go/blobs/{fourth}")).await.status, 200);
    assert!(
        !setup.cached_blob(&blobs[1]).exists(),
        "the least recently used went"
    );
    for kept in [&blobs[0], &blobs[2], &fourth] {
        assert!(setup.cached_blob(kept).exists());
    }
    assert_eq!(
        setup
            .metric("deis_registry_proxy_cache_evictions_total")
            .await,
        1.0
    );

    // A smaller budget after a restart evicts while the index is rebuilt, oldest use first.
    setup.stop_proxy().await;
    setup.max_bytes = 2 << 20;
    setup.start_proxy().await;
    assert!(
        !setup.cached_blob(&blobs[2]).exists(),
        "the least recently used went"
    );
    assert!(setup.cached_blob(&blobs[0]).exists() && setup.cached_blob(&fourth).exists());
    assert_eq!(
        setup.metric("deis_registry_proxy_cache_size_bytes").await,
        (2 << 20) as f64
    );
}
