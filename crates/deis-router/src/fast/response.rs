//! A backend's response head on the fast path: parsed by `httparse`, checked like a request's
//! (an ambiguous framing is a failed backend, 502), and written for the client without
//! hop-by-hop fields, with HSTS when due and `Connection: close` when the connection ends.

use axum::http::StatusCode;

use super::head::{Framing, field, framing, tokens};
use crate::proxy::headers::HOP_BY_HOP;

/// The most header fields read in a response head, and its largest size.
const MAX_HEADERS: usize = 100;
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// What the backend's buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Not yet a whole head.
    Partial,
    /// An interim (1xx) head of this many bytes, already written for the client.
    Interim(usize),
    /// The final head, already written for the client.
    Final(Meta),
}

/// What the final head says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The head's length.
    pub(crate) len: usize,
    pub(crate) status: u16,
    /// The body's framing.
    pub(crate) framing: Framing,
    /// Whether the backend's connection can take another request after this body.
    pub(crate) reusable: bool,
    /// Whether the client's connection ends after this response.
    pub(crate) close: bool,
}

/// The backend sent what cannot be passed on safely.
#[derive(Debug, thiserror::Error)]
#[error("the backend's response head is invalid")]
pub(crate) struct Invalid;

/// How the client's side is asked to end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// The request was `HEAD` (no body follows whatever the head says).
    pub(crate) head_request: bool,
    /// `Strict-Transport-Security` to set.
    pub(crate) hsts: Option<&'a str>,
    /// Close the client's connection after this response.
    pub(crate) close: bool,
}

/// Parses the response head at the start of `buf` and writes it for the client to `out`.
pub(crate) fn parse(buf: &[u8], ask: Ask<'_>, out: &mut Vec<u8>) -> Result<Parsed, Invalid> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(Parsed::Partial),
        _ => return Err(Invalid),
    };
    let status = response.code.ok_or(Invalid)?;
    let fields = || response.headers.iter().map(|h| (h.name, h.value));
    if status == 101 {
        // Only upgrade requests may switch protocols, and those go to hyper.
        return Err(Invalid);
    }
    let interim = (100..200).contains(&status);
    let declared = framing(fields()).map_err(|_| Invalid)?;
    let framing = match declared {
        _ if interim || ask.head_request || status == 204 || status == 304 => Framing::Empty,
        Framing::Empty => Framing::Close,
        other => other,
    };
    let connection: Vec<&[u8]> = fields()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| tokens(v))
        .collect();
    let upstream_close = connection.iter().any(|t| t.eq_ignore_ascii_case(b"close"));
    let close = ask.close || framing == Framing::Close;
    write_status(out, status, response.reason.unwrap_or(""));
    for (name, value) in fields() {
        let dropped = HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("content-length")
            || (ask.hsts.is_some() && name.eq_ignore_ascii_case("strict-transport-security"))
            || connection
                .iter()
                .any(|t| name.as_bytes().eq_ignore_ascii_case(t));
        if !dropped {
            field(out, name.as_bytes(), value);
        }
    }
    if interim {
        out.extend_from_slice(b"\r\n");
        return Ok(Parsed::Interim(len));
    }
    match (declared, framing) {
        (Framing::Length(n), _) => field(out, b"content-length", n.to_string().as_bytes()),
        (_, Framing::Chunked) => field(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if let Some(hsts) = ask.hsts {
        field(out, b"strict-transport-security", hsts.as_bytes());
    }
    if close {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Parsed::Final(Meta {
        len,
        status,
        framing,
        reusable: response.version == Some(1) && !upstream_close && framing != Framing::Close,
        close,
    }))
}

/// `HTTP/1.1 <code> <reason>\r\n`, the reason the backend's or else the standard one.
pub(crate) fn write_status(out: &mut Vec<u8>, status: u16, reason: &str) {
    let reason = match reason {
        "" => StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        given => given,
    };
    out.extend_from_slice(format!("HTTP/1.1 {status:03} {reason}\r\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &str, ask: Ask<'_>, expect: &str) {
        let mut out = Vec::new();
        let got = match parse(head.as_bytes(), ask, &mut out) {
            Ok(Parsed::Final(m)) => format!(
                "{:?} reusable={} close={}\n{}",
                m.framing,
                m.reusable,
                m.close,
                String::from_utf8_lossy(&out)
            ),
            Ok(other) => format!("{other:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect, "{head:?}");
    }

    #[test]
    fn response_heads_are_rewritten_for_the_client() {
        let plain = Ask {
            head_request: false,
            hsts: None,
            close: false,
        };
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-App: a\r\n\r\nhi",
            plain,
            "Length(2) reusable=true close=false\nHTTP/1.1 200 OK\r\nX-App: a\r\ncontent-length: 2\r\n\r\n",
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nStrict-Transport-Security: max-age=1\r\n\r\n",
            Ask {
                hsts: Some("max-age=9"),
                ..plain
            },
            "Chunked reusable=true close=false\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nstrict-transport-security: max-age=9\r\n\r\n",
        );
        check(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            plain,
            "Close reusable=false close=true\nHTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
        );
        check(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            plain,
            "Empty reusable=true close=false\nHTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            Ask {
                head_request: true,
                close: true,
                ..plain
            },
            "Empty reusable=true close=true\nHTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\n",
        );
        check(
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            plain,
            "Interim(40)",
        );
        check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", plain, "Partial");
        let invalid = "the backend's response head is invalid";
        check("HTTP/1.1 101 Switching Protocols\r\n\r\n", plain, invalid);
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            plain,
            invalid,
        );
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            plain,
            invalid,
        );
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            plain,
            invalid,
        );
        check("garbage\r\n\r\n", plain, invalid);
    }
}
