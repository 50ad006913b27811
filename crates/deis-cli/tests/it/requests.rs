//! The requests `deis` sends, recorded by a pass-through proxy in front of a real controller:
//! register, create, config:set, releases and rollback send what the Deis v1.13 client sends
//! (method, path with its trailing slash and `?page_size=`, JSON body, User-Agent, token).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::support::{Controller, User};

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    body: Value,
    user_agent: String,
    token: bool,
}

#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    target: String,
    client: Client<HttpConnector, Body>,
}

async fn forward(State(r): State<Recorder>, request: Request) -> axum::response::Response {
    let (mut parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if let Ok(mut seen) = r.seen.lock() {
        seen.push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            user_agent: header("user-agent"),
            token: header("authorization").starts_with("token "),
        });
    }
    parts.uri = format!("{}{path}", r.target).parse().expect("uri");
    let upstream = axum::http::Request::from_parts(parts, Body::from(bytes));
    match r.client.request(upstream).await {
        Ok(response) => response.map(Body::new),
        Err(e) => axum::response::Response::builder()
            .status(502)
            .body(Body::from(e.to_string()))
            .expect("response"),
    }
}

async fn recorder(controller: &Controller) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Recorder {
        seen: seen.clone(),
        target: controller.url.clone(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn take(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<(String, String, Value)> {
    let mut all = seen.lock().expect("lock");
    let out = all
        .iter()
        .map(|s| (s.method.clone(), s.path.clone(), s.body.clone()))
        .collect();
    assert!(
        all.iter().all(|s| s.user_agent == "Deis Client v1.13.4"),
        "the Deis client's User-Agent: {all:?}"
    );
    assert!(
        all.iter()
            .all(|s| s.token || s.path == "/v1/" || s.path.starts_with("/v1/auth/")),
        "every request after login carries the token: {all:?}"
    );
    all.clear();
    out
}

fn req(method: &str, path: &str, body: Value) -> (String, String, Value) {
    (method.to_owned(), path.to_owned(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deis_clients_requests_for_its_core_commands() {
    let c = Controller::start().await;
    let (url, seen) = recorder(&c).await;
    let dev = User::new("shop");

    dev.register(&url, "dev").await;
    assert_eq!(
        take(&seen),
        [
            req("GET", "/v1/", Value::Null),
            req(
                "POST",
                "/v1/auth/register/",
                json!({"username": "dev", "password": "pw", "email": "dev@example.com"})
            ),
            req(
                "POST",
                "/v1/auth/login/",
                json!({"username": "dev", "password": "pw"})
            ),
        ]
    );

    dev.ok(&["create", "shop", "--no-remote"]).await;
    assert_eq!(
        take(&seen),
        [req("POST", "/v1/apps/", json!({"id": "shop"}))]
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing else was sent"
    );

    dev.ok(&["config:set", "GREETING=hello"]).await;
    assert_eq!(
        take(&seen),
        [req(
            "POST",
            "/v1/apps/shop/config/",
            json!({"values": {"GREETING": "hello"}})
        )]
    );

    dev.ok(&["releases"]).await;
    assert_eq!(
        take(&seen),
        [req(
            "GET",
            "/v1/apps/shop/releases/?page_size=100",
            Value::Null
        )]
    );

    dev.ok(&["rollback"]).await;
    assert_eq!(
        take(&seen),
        [req("POST", "/v1/apps/shop/releases/rollback/", json!({}))]
    );
    dev.ok(&["rollback", "v2"]).await;
    assert_eq!(
        take(&seen),
        [req(
            "POST",
            "/v1/apps/shop/releases/rollback/",
            json!({"version": 2})
        )]
    );
}
