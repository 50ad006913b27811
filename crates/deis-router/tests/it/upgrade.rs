//! WebSocket upgrades pass through the router in both directions.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::fixture::{router, serve};
use deis_testkit::eventually;

async fn echo_server() -> SocketAddr {
    async fn echo(mut socket: WebSocket) {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message
                && socket
                    .send(Message::Text(format!("echo: {}", text.as_str()).into()))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
    let app = axum::Router::new().route(
        "/socket",
        axum::routing::get(|ws: WebSocketUpgrade| async move { ws.on_upgrade(echo) }),
    );
    serve(app).await
}

#[tokio::test]
async fn websocket_messages_flow_both_ways() {
    let r = router().await;
    let backend = echo_server().await;
    r.app("chat", &[backend]).await;
    let mut socket = eventually(
        Duration::from_secs(10),
        "the WebSocket handshake",
        || async {
            let tcp = tokio::net::TcpStream::connect(r.http)
                .await
                .map_err(|e| e.to_string())?;
            tokio_tungstenite::client_async("ws://chat.example.com/socket", tcp)
                .await
                .map(|(socket, response)| {
                    assert_eq!(response.status(), 101);
                    socket
                })
                .map_err(|e| e.to_string())
        },
    )
    .await;
    for i in 0..3 {
        socket
            .send(tungstenite::Message::text(format!("hello {i}")))
            .await
            .expect("send");
        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a reply within 5 s")
            .expect("the socket is open")
            .expect("a message");
        assert_eq!(
            reply.into_text().expect("text").as_str(),
            format!("echo: hello {i}")
        );
    }
    socket.close(None).await.expect("close");
}
