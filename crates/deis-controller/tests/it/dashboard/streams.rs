//! The live views' cap: one user may have 32 live streams open at once (each app page holds
//! two); the 33rd is refused with a 429 that says what to do, while another user opens theirs,
//! and a stream closed (a tab shut) makes room for a new one.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::browser::owner_of;
use crate::support::{Api, Controller};

on_both_databases!(a_user_has_at_most_32_live_views_open);

/// What `deis_controller`'s dashboard allows a user (`streams::PER_USER`).
const PER_USER: usize = 32;

/// A live view's answer: the open connection of a stream, or the status and body of a refusal.
enum Opened {
    Stream(TcpStream),
    Refused(u16, String),
}

/// Opens `path` as the browser's `EventSource` does and reads the answer's head: a stream's
/// connection stays open; a refusal is read whole.
async fn open(api: &Api, path: &str, cookie: &str) -> Opened {
    let mut stream = TcpStream::connect(api.addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\
         Cookie: deis_session={cookie}\r\n\r\n",
        api.addr
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the connection closed before the answer's head");
            head.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_head)
        .await
        .expect("the answer's head within 10 s");
    let text = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    if status == 200 {
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{text}"
        );
        return Opened::Stream(stream);
    }
    let mut rest = Vec::new();
    // A refusal is short and complete; what has come within a second is enough to show.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    Opened::Refused(status, text + &String::from_utf8_lossy(&rest))
}

async fn a_user_has_at_most_32_live_views_open(c: Controller) {
    let _admin = c.user("admin").await;
    let alice = owner_of(&c, "alice", "garden").await;
    let bob = owner_of(&c, "bob", "orchard").await;

    let mut open_views = Vec::new();
    for n in 0..PER_USER {
        match open(&c, "/apps/garden/live/ps", &alice.cookie).await {
            Opened::Stream(s) => open_views.push(s),
            Opened::Refused(status, body) => panic!("view {n} refused: {status} {body}"),
        }
    }
    match open(&c, "/apps/garden/live/ps", &alice.cookie).await {
        Opened::Stream(_) => panic!("a 33rd live view was opened"),
        Opened::Refused(status, body) => {
            assert_eq!(status, 429, "{body}");
            assert!(
                body.contains("You have 32 live views open already; close one"),
                "{body}"
            );
        }
    }

    // Another user's views are counted on their own.
    let bobs = match open(&c, "/apps/orchard/live/ps", &bob.cookie).await {
        Opened::Stream(s) => s,
        Opened::Refused(status, body) => panic!("bob's view refused: {status} {body}"),
    };

    // A tab shut: its slot comes back once the server sees the connection gone.
    drop(open_views.pop());
    let reopened = deis_testkit::eventually(
        Duration::from_secs(30),
        "a live view to open again after one closed",
        || async {
            match open(&c, "/apps/garden/live/ps", &alice.cookie).await {
                Opened::Stream(s) => Ok(s),
                Opened::Refused(status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    drop((reopened, bobs, open_views));
}
