//! The HTTP front: `/metrics`, and every `/v2/` path parsed, checked for access and handed to
//! its handler inside a `request` span (`repository`, `reference`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{Method, StatusCode, header};
use tracing::Instrument;

use crate::error::{RegistryError, with_api_version};
use crate::names::{Reference, Route};
use crate::proxy::Proxy;
use crate::{blobs, manifests, uploads};

/// The proxy's routes (`/healthz` is added by the service plumbing).
pub(crate) fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(handle)
        .with_state(proxy)
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        proxy.metrics.render(),
    )
        .into_response()
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let span = tracing::info_span!(
        "request",
        http.method = %request.method(),
        repository = tracing::field::Empty,
        reference = tracing::field::Empty,
    );
    async move {
        let response = match serve(&proxy, request).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        };
        tracing::debug!(http.status = response.status().as_u16(), "Answered");
        with_api_version(response)
    }
    .instrument(span)
    .await
}

async fn serve(proxy: &Arc<Proxy>, request: Request) -> Result<Response, RegistryError> {
    let route = Route::parse(request.uri().path())?;
    let span = tracing::Span::current();
    if let Some(repository) = route.repository() {
        span.record("repository", repository.as_str());
    }
    match &route {
        Route::Manifest(_, reference) => {
            span.record("reference", tracing::field::display(reference));
        }
        Route::Blob(_, digest) => {
            span.record("reference", digest.as_str());
        }
        _ => {}
    }
    let method = request.method().clone();
    proxy
        .access
        .check(request.headers(), &route, &method)
        .await?;
    let reads = matches!(method, Method::GET | Method::HEAD);
    match route {
        Route::Base if reads => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            "{}",
        )
            .into_response()),
        Route::Catalog | Route::Tags(_) if reads => proxy.forward(request, None).await,
        Route::Manifest(repository, reference) => match method {
            Method::GET | Method::HEAD => {
                manifests::get(proxy, &repository, &reference, request).await
            }
            Method::PUT => manifests::put(proxy, &repository, &reference, request).await,
            Method::DELETE => match &reference {
                Reference::Digest(digest) => {
                    proxy.delete(request, &repository, digest.sha256()).await
                }
                Reference::Tag(_) => Err(RegistryError::Unsupported),
            },
            _ => Err(RegistryError::Unsupported),
        },
        Route::Blob(repository, digest) if reads => {
            blobs::get(proxy, &repository, &digest, request).await
        }
        Route::Blob(repository, digest) if method == Method::DELETE => {
            proxy.delete(request, &repository, digest.sha256()).await
        }
        Route::UploadStart(repository) if method == Method::POST => {
            uploads::start(proxy, &repository, request).await
        }
        Route::Upload(..) if matches!(method, Method::PATCH | Method::PUT) => {
            proxy.forward(request, Some(proxy.max_upload_bytes)).await
        }
        Route::Upload(..) if matches!(method, Method::GET | Method::DELETE) => {
            proxy.forward(request, None).await
        }
        _ => Err(RegistryError::Unsupported),
    }
}
