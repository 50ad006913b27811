//! Admission: the rules a request must pass before any backend sees it, in Deis's order: the
//! target's allow-list (403), HTTPS enforcement (301 to `https://`), the declared body size
//! against `bodySize` (413), and a target with somewhere to go (503).

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{HeaderValue, Response, header};

use super::Conn;
use super::answer::Answer;
use super::fields::Head;
use crate::settings::Settings;
use crate::table::Target;

/// What admission learnt about a request it let through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted {
    /// The client's address (`X-Forwarded-For` from a trusted proxy).
    pub(crate) client: IpAddr,
    /// `https` or `http`, as the client reached the platform.
    pub(crate) scheme: &'static str,
    /// Whether the request carries no body at all (so it can be sent again).
    pub(crate) empty_body: bool,
}

/// A request that was not let through: the router's answer, with where to go for the HTTPS
/// redirect.
#[derive(Debug)]
pub(crate) struct Refused {
    answer: Answer,
    location: Option<HeaderValue>,
}

impl Refused {
    /// The router's answer and, for the HTTPS redirect, where to go.
    pub(crate) fn parts(&self) -> (Answer, Option<&HeaderValue>) {
        (self.answer, self.location.as_ref())
    }

    /// The answer as a response.
    pub(super) fn response(self) -> Response<Body> {
        let mut response = self.answer.response();
        if let Some(location) = self.location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

impl From<Answer> for Refused {
    fn from(answer: Answer) -> Self {
        Refused {
            answer,
            location: None,
        }
    }
}

/// Lets `request` through to `target`'s backends, or refuses it with the router's answer.
pub(crate) fn admit(
    settings: &Settings,
    target: &Target<'_>,
    conn: &Conn,
    host: &str,
    request: &impl Head,
) -> Result<Admitted, Refused> {
    let client = client_ip(conn, request, settings);
    let allowed = match target.whitelist {
        Some(list) => list.allows(client),
        None => target.controller || !settings.enforce_whitelist,
    };
    if !allowed {
        return Err(Answer::Forbidden.into());
    }
    let scheme = scheme(conn, request, settings);
    if settings.enforce_https && scheme != "https" {
        return Err(redirect_to_https(host, request));
    }
    let length = request.content_length();
    if let (Some(limit), Some(length)) = (settings.body_size, length)
        && length > limit
    {
        return Err(Answer::PayloadTooLarge.into());
    }
    if target.backends.is_empty() {
        return Err(Answer::ServiceUnavailable.into());
    }
    Ok(Admitted {
        client,
        scheme,
        empty_body: request.body_is_empty(),
    })
}

/// `301` to the same host and path over HTTPS.
fn redirect_to_https(host: &str, request: &impl Head) -> Refused {
    let path = request.path_and_query();
    Refused {
        answer: Answer::MovedPermanently,
        location: HeaderValue::from_str(&format!("https://{host}{path}")).ok(),
    }
}

/// The client's address: the peer's, or the last `X-Forwarded-For` entry when the peer is a
/// trusted proxy (`proxyRealIpCidr`).
fn client_ip(conn: &Conn, headers: &impl Head, settings: &Settings) -> IpAddr {
    let peer = conn.peer.ip();
    if !settings.real_ip_from.allows(peer) {
        return peer;
    }
    headers
        .values("x-forwarded-for")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .last()
        .unwrap_or(peer)
}

/// `https` on TLS; otherwise the last `X-Forwarded-Proto` entry when the peer is a trusted
/// proxy (`proxyRealIpCidr`: a TLS-terminating balancer in front), else `http`. A client cannot
/// claim HTTPS for itself.
fn scheme(conn: &Conn, headers: &impl Head, settings: &Settings) -> &'static str {
    if conn.tls {
        return "https";
    }
    if !settings.real_ip_from.allows(conn.peer.ip()) {
        return "http";
    }
    let forwarded = headers
        .first("x-forwarded-proto")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim);
    match forwarded {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}
