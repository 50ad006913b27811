//! The REST API of Deis v1 (API 1.7): routes and one module per endpoint group. The rules
//! (who may touch which app, what a change may be) are `domain`'s; failures become responses
//! once, in `error`.

mod apps;
mod auth;
mod builds;
mod error;
mod extract;
mod keys;
mod openapi;
mod page;
mod perms;
mod render;
mod routes;
mod wire;

use axum::Router;
use axum::routing::any;
use tower::ServiceExt;

pub(crate) use crate::state::AppState;
pub(crate) use extract::forwarded_client;

/// The API's routes (from the table in `routes`), with the wire rules applied to every response.
pub(crate) fn router(state: AppState) -> Router {
    let state_for_grpc = state.clone();
    let mut api = Router::new();
    for endpoint in routes::endpoints() {
        api = api.route(endpoint.path, endpoint.handler);
    }
    let api = api
        .fallback(any(wire::not_found))
        .with_state(state)
        .layer(axum::middleware::from_fn(wire::wire));
    // Routing happens after the path is trimmed, so the trim wraps the whole router. The
    // builder's gRPC API shares the port (HTTP/2).
    crate::grpc::routes(state_for_grpc).fallback_service(api.map_request(wire::trim_trailing_slash))
}
