//! The live parts of the app page, as Server-Sent Events: the log followed (the stream of
//! `GET /v1/apps/{app}/logs?follow=true`, one event per line) and the process list, sent again
//! whenever `GET /v1/apps/{app}` (the wanted counts) or its `containers` change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::Dash;
use super::pages::app::process_list;
use super::rest::{self, Via, seg};
use super::session::Signed;
use super::view::error_page;

/// How often the process list is read again.
const PROCESS_POLL: Duration = Duration::from_secs(1);

/// The longest log line sent whole; longer ones are cut.
const MAX_LINE: usize = 16 * 1024;

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The log's last lines, then each new one as it arrives.
pub(crate) async fn logs(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    Path(app): Path<String>,
) -> Response {
    let path = format!("/v1/apps/{}/logs?follow=true&log_lines=100", seg(&app));
    let response = rest::send(
        &dash.rest,
        &via,
        Method::GET,
        &path,
        Some(signed.token()),
        None,
    )
    .await;
    if !response.status().is_success() {
        let reply = rest::read(response).await;
        return error_page(reply.status, &reply.error(), Some(&signed.viewer()));
    }
    let body = response.into_body().into_data_stream();
    let lines = futures_util::stream::unfold(
        (body, Vec::<u8>::new(), Vec::<String>::new()),
        |(mut body, mut buf, mut ready)| async move {
            loop {
                if !ready.is_empty() {
                    let line = ready.remove(0);
                    return Some((Ok(Event::default().data(line)), (body, buf, ready)));
                }
                let chunk = body.next().await?.ok()?;
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    ready.push(clean(&line));
                }
                if buf.len() > MAX_LINE {
                    ready.push(clean(&std::mem::take(&mut buf)));
                }
            }
        },
    );
    sse(lines)
}

/// A line as an event's data: no line breaks, at most [`MAX_LINE`] bytes.
fn clean(line: &[u8]) -> String {
    let line = &line[..line.len().min(MAX_LINE)];
    String::from_utf8_lossy(line)
        .trim_end_matches(['\n', '\r'])
        .replace(['\r', '\n'], " ")
}

/// The process list as HTML, sent as a `ps` event whenever it changes.
pub(crate) async fn processes(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    Path(app): Path<String>,
) -> Response {
    let app_path = format!("/v1/apps/{}", seg(&app));
    let token = signed.token().to_owned();
    let first = rest::call(&dash.rest, &via, Method::GET, &app_path, Some(&token), None).await;
    if !first.ok() {
        return error_page(first.status, &first.error(), Some(&signed.viewer()));
    }
    let stream = futures_util::stream::unfold(
        (dash, via, app_path, token, String::new(), true),
        |(dash, via, app_path, token, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(PROCESS_POLL).await;
                }
                let get = |path: String| {
                    let (dash, via, token) = (&dash, &via, &token);
                    async move {
                        rest::call(&dash.rest, via, Method::GET, &path, Some(token), None).await
                    }
                };
                let (app, containers) =
                    tokio::join!(get(app_path.clone()), get(format!("{app_path}/containers")));
                if !app.ok() || !containers.ok() {
                    // The app is gone or no longer the user's: the stream ends.
                    return None;
                }
                let html = process_list(&app.json["structure"], containers.results()).into_string();
                if html != last || first {
                    let event = Event::default().event("ps").data(html.clone());
                    return Some((Ok(event), (dash, via, app_path, token, html, false)));
                }
            }
        },
    );
    sse(stream)
}
