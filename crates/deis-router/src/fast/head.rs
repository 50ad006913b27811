//! The fast path's request head: parsed by `httparse` from the connection's buffer, checked
//! for everything that could make the router and a backend disagree on where the request ends
//! (request smuggling), and written out again for the backend.
//!
//! Refused with 400: `Content-Length` together with `Transfer-Encoding`, two different
//! `Content-Length`s, a `Content-Length` that is not plain digits, a transfer coding other
//! than `chunked`, two `Host` headers, and whatever `httparse` rejects (obs-fold, bad header
//! names, control characters). A head past [`MAX_HEAD`] bytes or [`MAX_HEADERS`] fields gets
//! 431. Left to hyper (the [`Parsed::Fallback`]): HTTP/2's preface, HTTP/1.0, upgrades,
//! `Expect`, targets that are not a path, and requests without `Host`.

use std::ops::Range;

use bytes::Bytes;

use crate::proxy::Answer;
use crate::proxy::admission::Admitted;
use crate::proxy::fields::{Head, parse_length};
use crate::proxy::headers::{HOP_BY_HOP, REQUEST_ID};

/// The largest request head read; past it the answer is 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in a head (as hyper).
pub(crate) const MAX_HEADERS: usize = 100;

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes (a declared `Content-Length: 0` too).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// What the buffer holds.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not yet a whole head.
    Partial,
    /// A head for the fast path: its bytes are the buffer's first [`Layout::len`].
    Complete(Layout),
    /// A request the fast path refuses with this answer (the connection then closes).
    Refused(Answer),
    /// A request for hyper.
    Fallback,
}

/// Where a head's parts are in its bytes.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The head's length.
    pub(crate) len: usize,
    method: Range<usize>,
    target: Range<usize>,
    /// Name and value of each field.
    fields: Vec<(Range<usize>, Range<usize>)>,
    host: Range<usize>,
    framing: Framing,
    close: bool,
}

/// A request head the fast path serves.
#[derive(Debug)]
pub(crate) struct RequestHead {
    raw: Bytes,
    layout: Layout,
}

/// Looks at the start of `buf` for a request head.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) if request.version == Some(1) => {
            layout(buf, n, &request).map_or_else(|p| p, Parsed::Complete)
        }
        Ok(httparse::Status::Complete(_)) => Parsed::Fallback,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            Parsed::Refused(Answer::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        // `PRI * HTTP/2.0` (h2c with prior knowledge) and versions hyper answers itself.
        Err(httparse::Error::Version) => Parsed::Fallback,
        Err(httparse::Error::TooManyHeaders) => Parsed::Refused(Answer::HeadersTooLarge),
        Err(_) => Parsed::Refused(Answer::BadRequest),
    }
}

/// The layout of a head the fast path serves, or what else to do with it.
fn layout(buf: &[u8], len: usize, request: &httparse::Request<'_, '_>) -> Result<Layout, Parsed> {
    let target = match request.path {
        Some(p) if p.starts_with('/') => range_in(buf, p.as_bytes()),
        _ => return Err(Parsed::Fallback),
    };
    let mut fields = Vec::with_capacity(request.headers.len());
    let (mut host, mut hosts, mut close) = (0..0, 0, false);
    for h in request.headers.iter() {
        let (name, value) = (range_in(buf, h.name.as_bytes()), range_in(buf, h.value));
        let is = |n: &str| h.name.eq_ignore_ascii_case(n);
        if is("host") {
            hosts += 1;
            host = value.clone();
        } else if is("connection") {
            close |= tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close"));
        } else if is("upgrade") || is("expect") {
            return Err(Parsed::Fallback);
        }
        fields.push((name, value));
    }
    match hosts {
        0 => return Err(Parsed::Fallback),
        1 => {}
        _ => return Err(Parsed::Refused(Answer::BadRequest)),
    }
    let framing =
        framing(request.headers.iter().map(|h| (h.name, h.value))).map_err(Parsed::Refused)?;
    Ok(Layout {
        len,
        method: range_in(buf, request.method.unwrap_or("").as_bytes()),
        target,
        fields,
        host,
        framing,
        close,
    })
}

/// The body framing the fields declare, or 400 when they are ambiguous.
pub(crate) fn framing<'a>(
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<Framing, Answer> {
    let (mut length, mut chunked, mut codings) = (None, false, 0u32);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|&b| b == b',') {
                let n = parse_length(part.trim_ascii()).ok_or(Answer::BadRequest)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Answer::BadRequest);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings += 1;
            chunked = value.trim_ascii().eq_ignore_ascii_case(b"chunked");
        }
    }
    match (length, codings) {
        (Some(_), 1..) => Err(Answer::BadRequest),
        (_, 2..) => Err(Answer::BadRequest),
        (None, 1) if chunked => Ok(Framing::Chunked),
        (None, 1) => Err(Answer::BadRequest),
        (Some(n), 0) => Ok(Framing::Length(n)),
        (None, 0) => Ok(Framing::Empty),
    }
}

/// Where `part` (a slice of `whole`) starts and ends in it.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

impl RequestHead {
    /// The head of `layout`, whose bytes are `raw`.
    pub(crate) fn new(raw: Bytes, layout: Layout) -> RequestHead {
        RequestHead { raw, layout }
    }

    /// The body's framing.
    pub(crate) fn framing(&self) -> Framing {
        self.layout.framing
    }

    /// Whether the client asked to close the connection after this request.
    pub(crate) fn close(&self) -> bool {
        self.layout.close
    }

    fn text(&self, range: &Range<usize>) -> &str {
        self.raw
            .get(range.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The method.
    pub(crate) fn method(&self) -> &str {
        self.text(&self.layout.method)
    }

    /// The `Host` header's value.
    pub(crate) fn host(&self) -> &str {
        self.text(&self.layout.host)
    }

    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let slice = |r: &Range<usize>| self.raw.get(r.clone()).unwrap_or_default();
        self.layout
            .fields
            .iter()
            .map(move |(n, v)| (slice(n), slice(v)))
    }

    /// Writes the head as the backend gets it: hop-by-hop fields out, `X-Forwarded-*` and
    /// `X-Request-Id` (unless the client sent one) in, the body's framing declared again.
    pub(crate) fn write_upstream(
        &self,
        admitted: &Admitted,
        port: u16,
        request_id: &str,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(self.method().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.path_and_query().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let connection: Vec<&[u8]> = self
            .fields()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .flat_map(|(_, v)| tokens(v))
            .collect();
        let mut has_id = false;
        for (name, value) in self.fields() {
            let dropped = HOP_BY_HOP
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
                || REPLACED
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
                || connection.iter().any(|t| name.eq_ignore_ascii_case(t));
            if dropped {
                continue;
            }
            has_id |= name.eq_ignore_ascii_case(REQUEST_ID.as_bytes());
            field(out, name, value);
        }
        let client = admitted.client.to_string();
        field(out, b"x-forwarded-for", client.as_bytes());
        field(out, b"x-forwarded-proto", admitted.scheme.as_bytes());
        field(out, b"x-forwarded-port", port.to_string().as_bytes());
        let ssl: &[u8] = if admitted.scheme == "https" {
            b"on"
        } else {
            b"off"
        };
        field(out, b"x-forwarded-ssl", ssl);
        if !has_id {
            field(out, REQUEST_ID.as_bytes(), request_id.as_bytes());
        }
        match self.layout.framing {
            Framing::Length(n) => field(out, b"content-length", n.to_string().as_bytes()),
            Framing::Chunked => field(out, b"transfer-encoding", b"chunked"),
            Framing::Empty | Framing::Close => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Fields the router sets itself (and `Content-Length`, declared again from the framing).
const REPLACED: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-ssl",
    "content-length",
    "proxy-connection",
];

/// Appends `name: value\r\n`.
pub(crate) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The comma-separated tokens of a `Connection` value, trimmed.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

impl Head for RequestHead {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    fn path_and_query(&self) -> &str {
        self.text(&self.layout.target)
    }

    fn content_length(&self) -> Option<u64> {
        match self.layout.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    fn body_is_empty(&self) -> bool {
        matches!(self.layout.framing, Framing::Empty | Framing::Length(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &str, expect: &str) {
        let got = match parse(head.as_bytes()) {
            Parsed::Partial => "partial".to_owned(),
            Parsed::Complete(l) => format!("fast {:?} close={}", l.framing, l.close),
            Parsed::Refused(answer) => format!("{answer:?}"),
            Parsed::Fallback => "fallback".to_owned(),
        };
        assert_eq!(got, expect, "{head:?}");
    }

    #[test]
    fn heads_are_served_refused_or_left_to_hyper() {
        let get = "GET / HTTP/1.1\r\nHost: a\r\n";
        check(&format!("{get}\r\n"), "fast Empty close=false");
        check(
            &format!("{get}Connection: keep-alive, close\r\n\r\n"),
            "fast Empty close=true",
        );
        check(
            &format!("{get}Content-Length: 5\r\n\r\n"),
            "fast Length(5) close=false",
        );
        check(
            &format!("{get}Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            "fast Length(5) close=false",
        );
        check(
            &format!("{get}Transfer-Encoding: Chunked\r\n\r\n"),
            "fast Chunked close=false",
        );
        check(get, "partial");
        // Smuggling.
        check(
            &format!("{get}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "BadRequest",
        );
        check(
            &format!("{get}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            "BadRequest",
        );
        check(
            &format!("{get}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            "BadRequest",
        );
        check(&format!("{get}Content-Length: 5, 6\r\n\r\n"), "BadRequest");
        check(&format!("{get}Content-Length: +5\r\n\r\n"), "BadRequest");
        check(&format!("{get}Content-Length: 0x5\r\n\r\n"), "BadRequest");
        check(
            &format!("{get}Transfer-Encoding: gzip, chunked\r\n\r\n"),
            "BadRequest",
        );
        check(
            &format!("{get}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "BadRequest",
        );
        check(
            &format!("{get}Transfer-Encoding: identity\r\n\r\n"),
            "BadRequest",
        );
        check(&format!("{get}Host: b\r\n\r\n"), "BadRequest");
        check(
            &format!("{get}X-Folded: a\r\n continued\r\n\r\n"),
            "BadRequest",
        );
        check(&format!("{get}Bad Name: a\r\n\r\n"), "BadRequest");
        check(&format!("{get}Content-Length : 5\r\n\r\n"), "BadRequest");
        check(&format!("{get}X-Nul: a\0b\r\n\r\n"), "BadRequest");
        check("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "BadRequest");
        check("GET\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", "BadRequest");
        check(
            &format!("{get}{}\r\n", "X-Many: 1\r\n".repeat(MAX_HEADERS)),
            "HeadersTooLarge",
        );
        check(
            &format!("{get}X-Big: {}", "a".repeat(MAX_HEAD)),
            "HeadersTooLarge",
        );
        // For hyper.
        check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "fallback");
        check("GET / HTTP/1.0\r\nHost: a\r\n\r\n", "fallback");
        check("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "fallback");
        // (hyper answers 400 to a space in the target.)
        check("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "fallback");
        check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "fallback");
        check("GET / HTTP/1.1\r\n\r\n", "fallback");
        check(
            &format!("{get}Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            "fallback",
        );
        check(
            &format!("{get}Expect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
            "fallback",
        );
    }

    #[test]
    fn the_backend_gets_the_head_without_hop_by_hop_fields() {
        let raw = "POST /p?q=1 HTTP/1.1\r\nHost: a.example.com\r\nConnection: keep-alive, X-Secret\r\n\
            X-Secret: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\nX-Kept: yes\r\n\
            Content-Length: 3\r\n\r\n";
        let Parsed::Complete(layout) = parse(raw.as_bytes()) else {
            panic!("not a head");
        };
        let head = RequestHead::new(Bytes::from(raw), layout);
        let admitted = Admitted {
            client: "192.0.2.1".parse().expect("ip"),
            scheme: "http",
            empty_body: false,
        };
        let mut out = Vec::new();
        head.write_upstream(&admitted, 80, "id-1", &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /p?q=1 HTTP/1.1\r\nHost: a.example.com\r\nX-Kept: yes\r\n\
            x-forwarded-for: 192.0.2.1\r\nx-forwarded-proto: http\r\nx-forwarded-port: 80\r\n\
            x-forwarded-ssl: off\r\nx-request-id: id-1\r\ncontent-length: 3\r\n\r\n"
        );
    }
}
