//! The builder's gRPC API on the controller's port: the same rules as the REST hooks.

use deis_proto::controller::v1::builder_service_client::BuilderServiceClient;
use deis_proto::controller::v1::{
    AuthorizePushRequest, CreateBuildRequest, GetAppConfigRequest, LookupKeyRequest,
};
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::Controller;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

fn with_key<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(v) = key.parse() {
        request
            .metadata_mut()
            .insert(deis_controller::BUILDER_AUTH, v);
    }
    request
}

on_both_databases!(builder_api);

async fn builder_api(c: Controller) {
    let alice = c.user("alice").await;
    let _bob = c.user("bob").await;
    c.app(&alice, "go").await;
    c.req(
        "POST",
        "/v1/keys",
        Some(&alice),
        Some(json!({"id": "laptop", "public": format!("{KEY} alice@laptop")})),
    )
    .await
    .expect(201, "CREATED");
    c.req(
        "POST",
        "/v1/apps/go/config",
        Some(&alice),
        Some(json!({"values": {"BUILDPACK_URL": "file:///bp"}})),
    )
    .await
    .expect(201, "CREATED");
    let key = c
        .store
        .get("/deis/controller/builderKey")
        .await
        .expect("store")
        .expect("a builder key")
        .value;
    let channel = Channel::from_shared(format!("http://{}", c.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = BuilderServiceClient::new(channel);

    let unauthenticated = client
        .lookup_key(LookupKeyRequest {
            public_key: KEY.into(),
        })
        .await
        .expect_err("no key");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    let wrong = client
        .lookup_key(with_key(
            "wrong",
            LookupKeyRequest {
                public_key: KEY.into(),
            },
        ))
        .await
        .expect_err("wrong key");
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let found = client
        .lookup_key(with_key(
            &key,
            LookupKeyRequest {
                public_key: KEY.into(),
            },
        ))
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(found.username, "alice");
    assert_eq!(found.fingerprint.len(), 47);
    let unknown = client
        .lookup_key(with_key(
            &key,
            LookupKeyRequest {
                public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN".into(),
            },
        ))
        .await
        .expect_err("unknown key");
    assert!(
        matches!(unknown.code(), Code::NotFound | Code::InvalidArgument),
        "{unknown:?}"
    );

    let push = |username: &str, app: &str| AuthorizePushRequest {
        username: username.into(),
        app: app.into(),
        fingerprint: found.fingerprint.clone(),
        ssh_connection: "127.0.0.1 50000 127.0.0.1 2223".into(),
        ssh_original_command: format!("git-receive-pack '{app}.git'"),
    };
    let ok = client
        .authorize_push(with_key(&key, push("alice", "go")))
        .await
        .expect("authorised")
        .into_inner();
    assert_eq!(ok.push_id.len(), 36);
    let denied = client
        .authorize_push(with_key(&key, push("bob", "go")))
        .await
        .expect_err("not bob's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let missing = client
        .authorize_push(with_key(&key, push("alice", "nope")))
        .await
        .expect_err("no app");
    assert_eq!(missing.code(), Code::NotFound);

    let config = client
        .get_app_config(with_key(
            &key,
            GetAppConfigRequest {
                username: "alice".into(),
                app: "go".into(),
            },
        ))
        .await
        .expect("config")
        .into_inner();
    assert_eq!(
        config.values.get("BUILDPACK_URL").map(String::as_str),
        Some("file:///bp")
    );

    let built = client
        .create_build(with_key(
            &key,
            CreateBuildRequest {
                username: "alice".into(),
                app: "go".into(),
                image: "go:git-ecdff91".into(),
                sha: "ecdff91c2244b73f9cdf944f880a2b3470a122f4".into(),
                procfile: [("web".to_owned(), "./server".to_owned())].into(),
                dockerfile: false,
            },
        ))
        .await
        .expect("build")
        .into_inner();
    assert_eq!(built.release_version, 3);
    assert_eq!(built.domains, ["go.example.com"]);
    let release = c
        .req("GET", "/v1/apps/go/releases/v3", Some(&alice), None)
        .await
        .json();
    assert_eq!(release["summary"], "alice deployed ecdff91");
    // The builder asks again when the controller went away mid-deploy: the same build is
    // answered with the release it made, not a second one.
    let again = client
        .create_build(with_key(
            &key,
            CreateBuildRequest {
                username: "alice".into(),
                app: "go".into(),
                image: "go:git-ecdff91".into(),
                sha: "ecdff91c2244b73f9cdf944f880a2b3470a122f4".into(),
                procfile: [("web".to_owned(), "./server".to_owned())].into(),
                dockerfile: false,
            },
        ))
        .await
        .expect("the same build again")
        .into_inner();
    assert_eq!(again.release_version, 3);
    let releases = c
        .req("GET", "/v1/apps/go/releases", Some(&alice), None)
        .await
        .json();
    assert_eq!(releases["count"], 3, "{releases}");
    // Asked by a user who may not deploy the app, it is refused as before.
    let stranger = client
        .create_build(with_key(
            &key,
            CreateBuildRequest {
                username: "bob".into(),
                app: "go".into(),
                image: "go:git-ecdff91".into(),
                sha: "ecdff91c2244b73f9cdf944f880a2b3470a122f4".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("not bob's app");
    assert_eq!(stranger.code(), Code::PermissionDenied, "{stranger:?}");
    let bad = client
        .create_build(with_key(
            &key,
            CreateBuildRequest {
                username: "alice".into(),
                app: "go".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no image");
    assert_eq!(bad.code(), Code::InvalidArgument);
    // The same refusals as over REST, with the code of the same row of the one table: an image
    // the app may not run is 403 there and PermissionDenied here.
    let platform = client
        .create_build(with_key(
            &key,
            CreateBuildRequest {
                username: "alice".into(),
                app: "go".into(),
                image: "deis/controller:v1.13.4".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("a platform image");
    assert_eq!(platform.code(), Code::PermissionDenied, "{platform:?}");
}
