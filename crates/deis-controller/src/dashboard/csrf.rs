//! The CSRF check of every form: the `csrf` field must equal the session's token. The cookie's
//! `SameSite=Strict` already keeps other sites' forms out; the token is the second lock.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::session::Signed;
use super::view::error_page;
use super::{Dash, Fields};

/// A form posted in a session, with the session's token: what every handler that changes
/// anything takes. Without a session the browser is sent to sign in; without the token it gets
/// the 403 page of [`refusal`].
pub(crate) struct Posted {
    pub(crate) signed: Signed,
    pub(crate) form: Fields,
}

impl FromRequest<Dash> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, dash: &Dash) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, dash).await?;
        let form = Fields::from_request(Request::from_parts(parts, body), dash).await?;
        match refusal(&signed, &form.0) {
            Some(refused) => Err(refused),
            None => Ok(Posted { signed, form }),
        }
    }
}

/// `None` when `form` carries the session's token; else the 403 page to answer with.
pub(crate) fn refusal(signed: &Signed, form: &HashMap<String, String>) -> Option<Response> {
    let sent = form.get("csrf").map(String::as_bytes).unwrap_or_default();
    if !sent.is_empty() && bool::from(sent.ct_eq(signed.csrf.as_bytes())) {
        return None;
    }
    Some(error_page(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this dashboard (its security token is missing or wrong); reload the page and try again.",
        Some(&signed.viewer()),
    ))
}
