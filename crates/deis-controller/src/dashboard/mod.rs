//! The web dashboard: the user's day in a browser, served by the controller beside the API
//! (`http://deis.<domain>/`; the API stays under `/v1/`). Server-rendered HTML (maud templates
//! compiled into the binary), one stylesheet, and one small script for the live parts (the log
//! tail and process states, over Server-Sent Events); every page works without it.
//!
//! It holds no rules of its own: every read and every action is the REST request the `deis`
//! client sends, dispatched in process to the API's router with the user's token ([`rest`]), so
//! permissions, validation and error messages are the API's. What it adds is the browser's
//! side: sessions in an `HttpOnly; SameSite=Strict` cookie ([`session`]), a CSRF token on every
//! form ([`csrf`]), and pages that show an error where it happened.

mod csrf;
mod live;
mod pages;
mod rest;
mod session;
mod streams;
mod view;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;
use rest::{Client, Via};
use session::Signed;

/// The largest form accepted (a certificate chain and its key fit many times over).
const MAX_FORM: usize = 256 * 1024;

/// What every dashboard handler shares: the controller's state and the API router that every
/// read and action goes through.
#[derive(Clone)]
pub(crate) struct Dash {
    pub(crate) state: AppState,
    pub(crate) rest: Router,
    /// The live streams each user has open.
    pub(crate) streams: streams::Streams,
}

impl Dash {
    /// The REST API as the signed-in user of a page calls it.
    pub(crate) fn client(&self, signed: &Signed, via: &Via) -> Client {
        Client::new(&self.rest, via, Some(signed.token()))
    }

    /// The REST API as a browser that has not signed in calls it.
    pub(crate) fn anonymous(&self, via: &Via) -> Client {
        Client::new(&self.rest, via, None)
    }
}

/// The dashboard's routes; anything else falls through to `rest` (the API).
pub(crate) fn router(state: AppState, rest: Router) -> Router {
    let dash = Dash {
        state,
        rest: rest.clone(),
        streams: streams::Streams::default(),
    };
    Router::new()
        .route("/", get(pages::apps::list).post(pages::apps::create))
        .route(
            "/signin",
            get(pages::auth::signin_form).post(pages::auth::signin),
        )
        .route(
            "/register",
            get(pages::auth::register_form).post(pages::auth::register),
        )
        .route("/signout", post(pages::auth::signout))
        .route("/apps/{app}", get(pages::app::show))
        .route("/apps/{app}/{action}", post(pages::actions::act))
        .route("/apps/{app}/live/logs", get(live::logs))
        .route("/apps/{app}/live/ps", get(live::processes))
        .route("/keys", get(pages::keys::show).post(pages::keys::act))
        .route("/admin", get(pages::admin::show).post(pages::admin::act))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::from_fn(headers))
        .with_state(dash)
        .fallback_service(rest)
}

/// Refuses a form sent from another site: apps run on sibling names of the dashboard's, so
/// `SameSite` cookies do not stop one of them from posting a sign-in form of its own (signing the
/// user in as the app's owner) or any other form. Browsers say where a request comes from
/// (`Sec-Fetch-Site`, else `Origin`); a client that says neither (curl) is left to the forms'
/// CSRF tokens.
async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::POST || sent_from_here(request.headers()) {
        return next.run(request).await;
    }
    view::error_page(
        axum::http::StatusCode::FORBIDDEN,
        "This form was sent from another site; open the dashboard and send it from there",
        None,
    )
}

/// Whether a browser's request comes from the dashboard's own pages (or says nothing).
fn sent_from_here(headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).map(|h| h.as_bytes());
    let origin = origin.as_bytes();
    let origin_host = origin
        .strip_prefix(b"https://")
        .or_else(|| origin.strip_prefix(b"http://"));
    origin_host.is_some() && origin_host == host
}

/// What every dashboard answer carries: no framing, no sniffing, scripts and styles only from
/// here, no `<base>` to send relative links and forms elsewhere, forms only to here, and pages
/// not cached (they show private data).
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
             object-src 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/style.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/live.js"),
    )
        .into_response()
}

/// A submitted form's fields; a body that is not a form gets a page saying so.
pub(crate) struct Fields(pub(crate) HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<HashMap<String, String>>::from_request(req, state).await {
            Ok(axum::Form(map)) => Ok(Fields(map)),
            Err(e) => Err(view::error_page(
                StatusCode::BAD_REQUEST,
                &format!("The form could not be read: {}", e.body_text()),
                None,
            )),
        }
    }
}

impl Fields {
    /// A field's value, trimmed; empty when missing.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_form_from_an_app_on_a_sibling_name_is_refused() {
        assert!(sent_from_here(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!sent_from_here(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(!sent_from_here(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        let here = [
            ("host", "deis.example.com"),
            ("origin", "http://deis.example.com"),
        ];
        assert!(sent_from_here(&headers(&here)));
        let app = [
            ("host", "deis.example.com"),
            ("origin", "http://evil.example.com"),
        ];
        assert!(!sent_from_here(&headers(&app)));
        assert!(!sent_from_here(&headers(&[
            ("host", "deis.example.com"),
            ("origin", "null")
        ])));
        assert!(sent_from_here(&headers(&[("host", "deis.example.com")])));
    }
}
