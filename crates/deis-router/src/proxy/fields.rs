//! What admission and header rewriting read of a request, whoever parsed it: hyper's
//! [`Request`] (HTTP/2, upgrades, the fallback) or the fast path's head
//! ([`crate::fast`]). One set of rules for both.

use axum::http::{HeaderMap, Request, header};
use hyper::body::Incoming;

/// A request's head as the proxy's phases read it.
pub(crate) trait Head {
    /// The values of header `name` (lower-case), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The first value of header `name` (lower-case).
    fn first<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// Path and query (`/` when the target has none).
    fn path_and_query(&self) -> &str;

    /// The declared body length, if any.
    fn content_length(&self) -> Option<u64>;

    /// Whether the body is over before it starts (no `Content-Length` body, not chunked, no
    /// HTTP/2 data frames to come).
    fn body_is_empty(&self) -> bool;
}

impl Head for HeaderMap {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(|v| v.as_bytes())
    }

    fn path_and_query(&self) -> &str {
        "/"
    }

    fn content_length(&self) -> Option<u64> {
        parse_length(self.first(header::CONTENT_LENGTH.as_str())?)
    }

    fn body_is_empty(&self) -> bool {
        self.content_length().is_none_or(|l| l == 0)
    }
}

impl Head for Request<Incoming> {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        Head::values(self.headers(), name)
    }

    fn path_and_query(&self) -> &str {
        self.uri().path_and_query().map_or("/", |p| p.as_str())
    }

    fn content_length(&self) -> Option<u64> {
        self.headers().content_length()
    }

    fn body_is_empty(&self) -> bool {
        use hyper::body::Body as _;
        self.content_length().is_none_or(|l| l == 0) && self.body().is_end_stream()
    }
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces), at most 19 of them.
pub(crate) fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_length;

    #[test]
    fn lengths_are_plain_digits() {
        let check = |input: &[u8], expect: Option<u64>| {
            assert_eq!(
                parse_length(input),
                expect,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        };
        check(b"0", Some(0));
        check(b"1048576", Some(1 << 20));
        check(b"+5", None);
        check(b" 5", None);
        check(b"5 ", None);
        check(b"0x10", None);
        check(b"", None);
        check(b"99999999999999999999", None);
    }
}
