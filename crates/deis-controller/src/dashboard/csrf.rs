//! The CSRF check of every form: the `csrf` field must equal the session's token. The cookie's
//! `SameSite=Strict` already keeps other sites' forms out; the token is the second lock.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::session::Signed;
use super::view::error_page;

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
