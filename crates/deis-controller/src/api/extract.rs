//! Request extractors: the JSON (or form) body as a map, the authenticated user, pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::db::User;

/// The largest request body accepted.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// A request body as a JSON object (an empty body is an empty object). Form-encoded bodies are
/// read as string fields. Anything else is a 400.
pub(crate) struct Body(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                ApiError::Detail(
                    deis_types::Code::TooLarge,
                    format!("Request body larger than {MAX_BODY} bytes"),
                )
            })?;
        // `curl -d '{...}'` labels JSON as a form: a body that starts like a JSON object is JSON.
        let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let map = if form && !looks_like_json {
            url_decode_form(&bytes)
        } else if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(ApiError::bad_request("Request body must be a JSON object")),
                Err(e) => return Err(ApiError::bad_request(format!("JSON parse error - {e}"))),
            }
        };
        if map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
            return Err(ApiError::bad_request(
                "The request body may not contain NUL characters (\\u0000)",
            ));
        }
        Ok(Body(map))
    }
}

/// Whether a string anywhere in `value` (a key or a value) holds a NUL character, which no
/// name, key or value may hold (PostgreSQL text cannot store it).
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

fn url_decode_form(bytes: &[u8]) -> Map<String, Value> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SHA-256 of a token, hex: what the database indexes tokens by.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Looks up the user of an `Authorization: token <key>` header. `Ok(None)`: no credentials.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<User>, ApiError> {
    let Some(header) = parts.headers.get("authorization") else {
        return Ok(None);
    };
    let header = header.to_str().map_err(|_| ApiError::InvalidToken)?;
    let Some((scheme, key)) = header.split_once(' ') else {
        return Err(ApiError::InvalidToken);
    };
    if !scheme.eq_ignore_ascii_case("token") {
        return Ok(None);
    }
    let key = key.trim();
    let user = state.db.user_by_token_hash(&token_hash(key)).await?;
    match user {
        Some(u) if bool::from(u.token.as_bytes().ct_eq(key.as_bytes())) && u.is_active => {
            Ok(Some(u))
        }
        _ => Err(ApiError::InvalidToken),
    }
}

/// The authenticated caller; 401 without valid credentials.
pub(crate) struct Caller(pub(crate) User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Some(user) => Ok(Caller(user)),
            None => Err(ApiError::Unauthenticated),
        }
    }
}

/// The caller if valid credentials were sent, else anonymous (never a 401).
pub(crate) struct MaybeCaller(pub(crate) Option<User>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await {
            Ok(user) => Ok(MaybeCaller(user)),
            Err(ApiError::InvalidToken) => Ok(MaybeCaller(None)),
            Err(e) => Err(e),
        }
    }
}

/// The client's address as the nearest proxy saw it: the last entry of `X-Forwarded-For`
/// (over every line of the header). The platform's router puts its view of the client last;
/// whatever comes before is what the client wrote itself, and may be anything.
pub(crate) fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .map(|v| v.chars().take(64).collect::<String>())
}

/// Where a request comes from, for counting failed logins: the address the nearest proxy put
/// last in `X-Forwarded-For` (the router's view of the client), else the connection's peer.
/// A client that talks to the controller directly can forge the header; the per-user count
/// holds it back all the same.
pub(crate) struct ClientAddr(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let forwarded = forwarded_client(&parts.headers);
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        Ok(ClientAddr(
            forwarded.or(peer).unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::forwarded_client;

    fn check(lines: &[&'static str], expect: Option<&str>) {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        assert_eq!(forwarded_client(&headers).as_deref(), expect, "{lines:?}");
    }

    #[test]
    fn the_client_is_the_entry_the_nearest_proxy_put_last() {
        check(&[], None);
        check(&["192.0.2.7"], Some("192.0.2.7"));
        check(&["203.0.113.1, 192.0.2.7"], Some("192.0.2.7"));
        check(&["203.0.113.1", "192.0.2.7"], Some("192.0.2.7"));
        check(&["203.0.113.1, 192.0.2.7 , "], Some("192.0.2.7"));
        check(&[" , "], None);
    }
}
