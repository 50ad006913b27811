//! The Deis logger's HTTP API (§14.2): `GET /{app}?log_lines=N` (text, 204 when empty),
//! `DELETE /{app}`, and `/metrics`. Every API call presents the platform's logger secret
//! (`authorization: Bearer <secret>`), gRPC included; `/metrics` and `/healthz` need none.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::backend::Backend;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Api {
    logs: Backend,
}

pub(crate) fn router(logs: Backend) -> Router {
    Router::new()
        .route("/{app}", get(tail).delete(delete))
        .route("/{app}/", get(tail).delete(delete))
        .with_state(Api { logs })
}

pub(crate) fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

/// Answers 401 unless the request presents the secret.
pub(crate) async fn require_secret(
    State(secret): State<Arc<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if deis_runtime::presents(given, &secret) {
        return next.run(request).await;
    }
    let why = format!(
        "The logger's API needs the platform's secret ({}) as Authorization: Bearer <secret>",
        deis_store::keys::Key::logger_secret().path()
    );
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        tonic::Status::unauthenticated(why)
            .into_http::<axum::body::Body>()
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response()
    }
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn tail(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let lines = query
        .get("log_lines")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(100);
    let entries = match api.logs.tail(&app, lines).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "Reading logs failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Error accessing logs for {app}"),
            )
                .into_response();
        }
    };
    if entries.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let body: String = entries.iter().map(|e| e.line() + "\n").collect();
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

async fn delete(State(api): State<Api>, Path(app): Path<String>) -> StatusCode {
    match api.logs.delete(&app).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
