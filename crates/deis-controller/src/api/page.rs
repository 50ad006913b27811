//! Pagination of list endpoints (§2.9): `?page_size=` (default 100) and `?page=`, answered
//! with `{"count", "next", "previous", "results"}` and absolute links.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::error::ApiError;

/// The page a list request asks for.
pub(crate) struct Page {
    pub(crate) limit: i64,
    pub(crate) offset: i64,
    number: i64,
    base: String,
}

const DEFAULT_PAGE_SIZE: i64 = 100;

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut size = DEFAULT_PAGE_SIZE;
        let mut number = 1;
        for pair in parts.uri.query().unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let parsed = || v.parse::<i64>().ok().filter(|n| *n > 0);
            match k {
                "page_size" => size = parsed().unwrap_or(DEFAULT_PAGE_SIZE),
                "page" => {
                    number = parsed().ok_or_else(|| {
                        ApiError::Detail(deis_types::Code::NotFound, "Invalid page.".into())
                    })?
                }
                _ => {}
            }
        }
        let host = parts
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Ok(Page {
            limit: size,
            offset: (number - 1).saturating_mul(size),
            number,
            base: format!("http://{host}{}", parts.uri.path()),
        })
    }
}

impl Page {
    /// What tells this page apart from another one of the same list for the same caller.
    pub(crate) fn key(&self) -> (String, i64, i64) {
        (self.base.clone(), self.limit, self.offset)
    }

    /// The envelope around one page of `results` out of `count`.
    pub(crate) fn envelope(&self, count: i64, results: Vec<Value>) -> Value {
        let link =
            |n: i64| Value::String(format!("{}?page={n}&page_size={}", self.base, self.limit));
        let next = if self.offset + self.limit < count {
            link(self.number + 1)
        } else {
            Value::Null
        };
        let previous = if self.number > 1 {
            link(self.number - 1)
        } else {
            Value::Null
        };
        json!({"count": count, "next": next, "previous": previous, "results": results})
    }
}
