//! The dashboard's only way to read or change anything: the REST request the `deis` client would
//! send, dispatched in process to the API's own router. Every permission check, validation rule
//! and error message is therefore the API's, word for word.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::ServiceExt;

use crate::api::forwarded_client;

/// The largest REST answer the dashboard reads into memory (the log stream is not read whole).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Where the browser's request came from, passed on so that the API counts failed sign-ins
/// against the real client (as it does for the `deis` client behind the router): the last entry
/// of `X-Forwarded-For`, which the platform's router wrote (the ones before it are the client's
/// own words), else the connection's peer.
#[derive(Clone, Default)]
pub(crate) struct Via {
    forwarded_for: Option<HeaderValue>,
    peer: Option<ConnectInfo<SocketAddr>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Via {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Via {
            forwarded_for: forwarded_client(&parts.headers)
                .and_then(|client| HeaderValue::from_str(&client).ok()),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
        })
    }
}

/// The REST API as one browser's user calls it: every request carries the user's token (none
/// before signing in) and where the browser's request came from.
#[derive(Clone)]
pub(crate) struct Client {
    rest: Router,
    via: Via,
    token: Option<String>,
}

impl Client {
    /// A client of `rest` for the holder of `token`.
    pub(crate) fn new(rest: &Router, via: &Via, token: Option<&str>) -> Client {
        Client {
            rest: rest.clone(),
            via: via.clone(),
            token: token.map(str::to_owned),
        }
    }

    /// Sends `method path` with `body` (JSON), and the raw response.
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        send(
            &self.rest,
            &self.via,
            method,
            path,
            self.token.as_deref(),
            body,
        )
        .await
    }

    /// Sends a request and reads its answer.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        read(self.send(method, path, body).await).await
    }

    /// Reads `path`.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
}

/// What the API answered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// The body as JSON (`Null` when it is not JSON).
    pub(crate) json: Value,
    /// The body as text.
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The API's error message, as the `deis` client shows it: the `detail` or `error`, else
    /// each field's messages.
    pub(crate) fn error(&self) -> String {
        message(self.status, &self.json, &self.text)
    }

    /// The `results` of a paged list.
    pub(crate) fn results(&self) -> &[Value] {
        self.json["results"].as_array().map_or(&[], Vec::as_slice)
    }
}

fn message(status: StatusCode, json: &Value, text: &str) -> String {
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    match json {
        Value::Object(map) if map.contains_key("detail") => text_of(&map["detail"]),
        Value::Object(map) if map.contains_key("error") => text_of(&map["error"]),
        Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(field, v)| match field.as_str() {
                "non_field_errors" => text_of(v),
                _ => format!("{field}: {}", text_of(v)),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ if !text.trim().is_empty() && text.len() < 500 => text.trim().to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("The request failed")
            .to_owned(),
    }
}

/// A name that cannot be one segment of a REST path: empty (the path would name the collection,
/// `/v1/apps//config`) or `.`/`..` (it would name the parent, `/v1/apps/../config`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotAName {
    /// What the name is of, for the message (`app`, `domain`).
    what: &'static str,
    name: String,
}

impl NotAName {
    /// The 400 answer's message: what was wrong and what to do.
    pub(crate) fn message(&self) -> String {
        match self.name.as_str() {
            "" => format!("The {} name is empty; fill it in and try again", self.what),
            name => format!(
                "\"{name}\" is not a valid {} name: a name cannot be \".\" or \"..\"",
                self.what
            ),
        }
    }
}

/// One path segment of the REST request for the name of a `what` that came from a form or a
/// URL, percent-encoded; a name that would make the path another resource's is refused.
pub(crate) fn seg(what: &'static str, name: &str) -> Result<String, NotAName> {
    match name {
        "" | "." | ".." => Err(NotAName {
            what,
            name: name.to_owned(),
        }),
        _ => Ok(encode(name)),
    }
}

/// `/v1/apps/{app}` for an app named in a URL or a form.
pub(crate) fn app_path(app: &str) -> Result<String, NotAName> {
    seg("app", app).map(|app| format!("/v1/apps/{app}"))
}

/// A name the API gave (an app's id in a link), percent-encoded for a URL of the dashboard.
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `method path` with `body` (JSON) as the holder of `token`, and the raw response.
async fn send(
    rest: &Router,
    via: &Via,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("token {token}"));
    }
    if let Some(forwarded) = &via.forwarded_for {
        request = request.header("x-forwarded-for", forwarded.clone());
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let mut request = match request.body(body) {
        Ok(r) => r,
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "The request could not be made").into_response();
        }
    };
    if let Some(peer) = &via.peer {
        request.extensions_mut().insert(*peer);
    }
    match rest.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Reads a whole answer (at most [`MAX_ANSWER`] bytes).
pub(crate) async fn read(response: Response) -> Reply {
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), MAX_ANSWER).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => {
            return Reply {
                status: StatusCode::BAD_GATEWAY,
                json: Value::Null,
                text: "The answer was too large to show".to_owned(),
            };
        }
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, json, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value, expect: &str) {
        assert_eq!(message(StatusCode::BAD_REQUEST, &body, ""), expect);
    }

    #[test]
    fn messages_are_the_clients() {
        check(json!({"detail": "Not found."}), "Not found.");
        check(json!({"error": "locked"}), "locked");
        check(
            json!({"id": ["This field must be unique."]}),
            "id: This field must be unique.",
        );
        check(
            json!({"non_field_errors": ["Unable to log in with provided credentials."]}),
            "Unable to log in with provided credentials.",
        );
        check(Value::Null, "Bad Request");
    }

    fn check_seg(name: &str, expect: Result<&str, &str>) {
        let got = seg("domain", name);
        let got = got.as_deref().map_err(NotAName::message);
        assert_eq!(got, expect.map_err(str::to_owned), "{name:?}");
    }

    #[test]
    fn segments_are_encoded() {
        check_seg("www.example.com", Ok("www.example.com"));
        check_seg("a/b c", Ok("a%2Fb%20c"));
        check_seg("...", Ok("..."));
        check_seg("a..", Ok("a.."));
        check_seg("/", Ok("%2F"));
        check_seg("../x", Ok("..%2Fx"));
    }

    #[test]
    fn a_name_that_would_be_another_path_is_refused() {
        check_seg(
            "",
            Err("The domain name is empty; fill it in and try again"),
        );
        let dots = |d: &str| {
            format!("\"{d}\" is not a valid domain name: a name cannot be \".\" or \"..\"")
        };
        check_seg(".", Err(&dots(".")));
        check_seg("..", Err(&dots("..")));
    }
}
