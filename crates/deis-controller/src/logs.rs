//! The app log, fetched from the logger's gRPC API at `/deis/logs/{host,port}` (§4.5 logs).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use deis_proto::logger::v1::{DeleteRequest, LogEntry, QueryRequest};
use deis_store::keys::Component;

use crate::state::AppState;

async fn logger(state: &AppState) -> Option<String> {
    endpoint(state.mirror.store().as_ref()).await
}

/// The logger's gRPC URL from `/deis/logs/{host,port}`.
pub(crate) async fn endpoint(store: &dyn deis_store::ConfigStore) -> Option<String> {
    deis_runtime::Endpoint::lookup(store, Component::Logs)
        .await
        .map(|e| e.http_url())
}

/// One line as `deis logs` prints it: `2016-03-01T12:00:00UTC myapp[web.1]: message`.
fn line(e: &LogEntry) -> String {
    let micros = e
        .time
        .as_ref()
        .map(|t| t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1000))
        .unwrap_or(0);
    format!(
        "{} {}[{}]: {}\n",
        crate::time::deis(micros),
        e.app,
        e.source,
        e.message
    )
}

/// The last `lines` lines: 200 text, 204 when there are none, 500 when the logger fails.
pub(crate) async fn query(state: &AppState, app: &str, lines: u32) -> Response {
    let failed = || {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("Error accessing logs for {app}"),
        )
            .into_response()
    };
    let Some(endpoint) = logger(state).await else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let Ok(mut client) = deis_runtime::log_client(state.mirror.store().as_ref(), endpoint).await
    else {
        return failed();
    };
    match client
        .query(QueryRequest {
            app: app.to_owned(),
            lines,
        })
        .await
    {
        Ok(resp) => {
            let entries = resp.into_inner().entries;
            if entries.is_empty() {
                return StatusCode::NO_CONTENT.into_response();
            }
            let body: String = entries.iter().map(line).collect();
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::Unimplemented
            ) =>
        {
            StatusCode::NO_CONTENT.into_response()
        }
        Err(status) => {
            tracing::warn!(app.name = app, error = %status, "Querying the logger failed");
            failed()
        }
    }
}

/// Asks the logger to forget an app's lines; failures are only logged.
pub(crate) async fn delete(state: &AppState, app: &str) {
    let Some(endpoint) = logger(state).await else {
        return;
    };
    let failed = |error: &dyn std::fmt::Display| {
        tracing::warn!(app.name = app, %error, "Error deleting existing application logs");
    };
    match deis_runtime::log_client(state.mirror.store().as_ref(), endpoint).await {
        Ok(mut client) => {
            let request = DeleteRequest {
                app: app.to_owned(),
            };
            if let Err(status) = client.delete(request).await {
                failed(&status);
            }
        }
        Err(e) => failed(&e),
    }
}

/// The last `lines` lines, then every new line as it is stored, as one streamed `text/plain`
/// response (`GET /v1/apps/{app}/logs?follow=true`, for `deis logs -f`).
pub(crate) async fn follow(state: &AppState, app: &str, lines: u32) -> Response {
    let unavailable = |why: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"detail": why})),
        )
            .into_response()
    };
    let Some(endpoint) = logger(state).await else {
        return unavailable("No logger is running: start the platform's logger to follow logs");
    };
    let Ok(mut client) = deis_runtime::log_client(state.mirror.store().as_ref(), endpoint).await
    else {
        return unavailable("The logger cannot be reached");
    };
    let stream = match client
        .follow(deis_proto::logger::v1::FollowRequest {
            app: app.to_owned(),
            lines,
        })
        .await
    {
        Ok(s) => s.into_inner(),
        Err(status) => {
            tracing::warn!(app.name = app, error = %status, "Following the logger failed");
            return unavailable("The logger refused to follow this app");
        }
    };
    let body = futures_util::StreamExt::map(stream, |item| {
        item.map(|e| axum::body::Bytes::from(line(&e)))
            .map_err(|status| std::io::Error::other(status.to_string()))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
