//! A backend dying under load: no request fails, it is taken out at once and comes back when
//! it answers again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::fixture::{echo_app, raw, router, upstream};
use deis_testkit::eventually;

/// An upstream in its own runtime, so stopping it closes every connection as a dying process
/// would.
struct Killable {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killable {
    fn start(addr: SocketAddr, name: &'static str) -> Killable {
        let listener = std::net::TcpListener::bind(addr).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, echo_app(name)).await
            });
            let _ = stopped.recv();
            runtime.shutdown_background();
        });
        Killable {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_backend_dying_mid_load_fails_no_request_and_comes_back() {
    let r = router().await;
    let victim_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut victim = Killable::start(victim_addr, "victim");
    let survivor = upstream("survivor").await;
    r.app("busy", &[victim_addr, survivor]).await;
    crate::fixture::answers(r.http, "busy.example.com", 200, "").await;

    // Four keep-alive clients request as fast as they can.
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let running = Arc::new(AtomicBool::new(true));
    let (ok, failed, victim_hits) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, running, ok, failed, victim_hits) = (
            client.clone(),
            running.clone(),
            ok.clone(),
            failed.clone(),
            victim_hits.clone(),
        );
        let uri = format!("http://{}/", r.http);
        load.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let request = http::Request::get(&uri)
                    .header(http::header::HOST, "busy.example.com")
                    .body(Empty::new())
                    .expect("request");
                match client.request(request).await {
                    Ok(response) if response.status() == 200 => {
                        let body = response.into_body().collect().await;
                        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                        if body.starts_with(b"victim") {
                            victim_hits.fetch_add(1, Ordering::Relaxed);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let wait_for = |n: usize| {
        let ok = ok.clone();
        async move {
            let target = ok.load(Ordering::Relaxed) + n;
            eventually(Duration::from_secs(20), "requests to complete", || async {
                let now = ok.load(Ordering::Relaxed);
                if now >= target {
                    Ok(())
                } else {
                    Err(now.to_string())
                }
            })
            .await
        }
    };
    wait_for(300).await;
    assert!(
        victim_hits.load(Ordering::Relaxed) > 0,
        "both backends serve"
    );
    victim.kill();
    wait_for(1000).await;
    let metrics = || async {
        let (_, text) = raw(
            r.admin,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        text
    };
    assert!(
        metrics().await.contains("deis_router_backends_down 1"),
        "marked down"
    );

    // It comes back when it answers again.
    let hits_while_down = victim_hits.load(Ordering::Relaxed);
    let _victim = Killable::start(victim_addr, "victim");
    eventually(
        Duration::from_secs(10),
        "the backend back in rotation",
        || async {
            let hits = victim_hits.load(Ordering::Relaxed);
            if hits > hits_while_down {
                Ok(())
            } else {
                Err(hits.to_string())
            }
        },
    )
    .await;
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed out of {}",
        ok.load(Ordering::Relaxed)
    );
    assert!(metrics().await.contains("deis_router_backends_down 0"));
}
