//! The live parts of the app page, as Server-Sent Events: the log followed (the stream of
//! `GET /v1/apps/{app}/logs?follow=true`, one event per line) and the process list, sent again
//! whenever `GET /v1/apps/{app}` (the wanted counts) or its `containers` change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::Dash;
use super::pages::app::process_list;
use super::rest::{self, Via, app_path};
use super::session::Signed;
use super::streams::{PER_USER, Slot};
use super::view::{error_page, not_a_name};

/// How often the process list is read again.
const PROCESS_POLL: Duration = Duration::from_secs(1);

/// The longest log line sent whole; longer ones are cut.
const MAX_LINE: usize = 16 * 1024;

/// How often a stream checks that its session still exists (signed out: the stream ends).
const SESSION_CHECK: Duration = Duration::from_secs(5);

/// The events of `stream` while the session lasts, holding its user's stream slot.
fn sse(
    dash: &Dash,
    signed: &Signed,
    slot: Slot,
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let (db, id_hash) = (dash.state.db.clone(), signed.id_hash.clone());
    let ended = async move {
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            if !matches!(db.session(&id_hash).await, Ok(Some(_))) {
                return;
            }
        }
    };
    let stream = stream.take_until(Box::pin(ended)).map(move |event| {
        let _held = &slot;
        event
    });
    // A keep-alive often enough that a page left is found gone, and its slot freed, soon.
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response()
}

/// The page that says the user has too many live streams open.
fn too_many(signed: &Signed) -> Response {
    error_page(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("You have {PER_USER} live views open already; close one (another tab) and reload"),
        Some(&signed.viewer()),
    )
}

/// The log's last lines, then each new one as it arrives.
pub(crate) async fn logs(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    Path(app): Path<String>,
) -> Response {
    let app_path = match app_path(&app) {
        Ok(path) => path,
        Err(bad) => return not_a_name(&bad, &signed.viewer()),
    };
    let Some(slot) = dash.streams.open(&signed.user.username) else {
        return too_many(&signed);
    };
    let path = format!("{app_path}/logs?follow=true&log_lines=100");
    let response = dash
        .client(&signed, &via)
        .send(Method::GET, &path, None)
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
    sse(&dash, &signed, slot, lines)
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
    let app_path = match app_path(&app) {
        Ok(path) => path,
        Err(bad) => return not_a_name(&bad, &signed.viewer()),
    };
    let Some(slot) = dash.streams.open(&signed.user.username) else {
        return too_many(&signed);
    };
    let api = dash.client(&signed, &via);
    let first = api.get(&app_path).await;
    if !first.ok() {
        return error_page(first.status, &first.error(), Some(&signed.viewer()));
    }
    let stream = futures_util::stream::unfold(
        (api, app_path, String::new(), true),
        |(api, app_path, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(PROCESS_POLL).await;
                }
                let containers_path = format!("{app_path}/containers");
                let (app, containers) = tokio::join!(api.get(&app_path), api.get(&containers_path));
                if !app.ok() || !containers.ok() {
                    // The app is gone or no longer the user's: the stream ends.
                    return None;
                }
                let html = process_list(&app.json["structure"], containers.results()).into_string();
                if html != last || first {
                    let event = Event::default().event("ps").data(html.clone());
                    return Some((Ok(event), (api, app_path, html, false)));
                }
            }
        },
    );
    sse(&dash, &signed, slot, stream)
}
