//! The real registry behind the proxy: one pooled HTTP/1 client, requests made with only the
//! headers the distribution API needs, and answers relayed with the registry's own URLs
//! (`Location`, `Link`) made relative, so clients come back through the proxy.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long connecting to the registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the registry may take to start answering.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed for one blob (storage drivers may send clients elsewhere).
const MAX_REDIRECTS: usize = 3;

/// Request headers passed on to the registry. The body's framing is not among them: the
/// client sends the body it has, with its length when known.
const FORWARDED: [HeaderName; 5] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::CONTENT_RANGE,
    header::RANGE,
    header::USER_AGENT,
];

/// Response headers that describe one connection, not the answer.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
];

/// An `upstream` setting that is not a usable URL.
#[derive(Debug, thiserror::Error)]
#[error("the upstream registry {url:?} is not an http://host:port URL")]
pub struct UpstreamUrlError {
    url: String,
}

/// The registry could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot reach the registry at {origin}")]
    Unreachable {
        origin: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("the registry at {origin} did not answer within {} s", ANSWER_TIMEOUT.as_secs())]
    Timeout { origin: String },
    #[error("the registry's answer broke off")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot make a request for {path:?}")]
    Request {
        path: String,
        #[source]
        source: http::Error,
    },
}

/// The registry the proxy fronts.
pub(crate) struct Upstream {
    client: Client<HttpConnector, Body>,
    origin: String,
}

impl Upstream {
    pub(crate) fn new(url: &str) -> Result<Upstream, UpstreamUrlError> {
        let error = || UpstreamUrlError {
            url: url.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| error())?;
        let authority = uri.authority().ok_or_else(error)?;
        if uri.scheme_str() != Some("http") || !matches!(uri.path(), "" | "/") {
            return Err(error());
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Upstream {
            client,
            origin: format!("http://{authority}"),
        })
    }

    /// A request for `path_and_query` with the API headers of `headers`.
    pub(crate) fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Request<Body>, UpstreamError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.origin));
        for name in &FORWARDED {
            for value in headers.get_all(name) {
                builder = builder.header(name, value);
            }
        }
        builder.body(body).map_err(|source| UpstreamError::Request {
            path: path_and_query.to_owned(),
            source,
        })
    }

    /// Sends `request`, waiting at most [`ANSWER_TIMEOUT`] for the answer's head.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(source)) => Err(UpstreamError::Unreachable {
                origin: self.origin.clone(),
                source,
            }),
            Err(_) => Err(UpstreamError::Timeout {
                origin: self.origin.clone(),
            }),
        }
    }

    /// [`Upstream::request`], then [`Upstream::send`].
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        self.send(self.request(method, path_and_query, headers, body)?)
            .await
    }

    /// `GET path`, following the registry's redirects.
    pub(crate) async fn get_following(
        &self,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let mut target = path.to_owned();
        let mut redirects = 0;
        loop {
            let request = if target.starts_with('/') {
                self.request(Method::GET, &target, headers, Body::empty())?
            } else {
                Request::get(&target)
                    .body(Body::empty())
                    .map_err(|source| UpstreamError::Request {
                        path: target.clone(),
                        source,
                    })?
            };
            let response = self.send(request).await?;
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok());
            match location {
                Some(location)
                    if response.status().is_redirection() && redirects < MAX_REDIRECTS =>
                {
                    target = location.to_owned();
                    redirects += 1;
                }
                _ => return Ok(response),
            }
        }
    }

    /// The registry's answer as the proxy's: hop-by-hop headers dropped, its URLs made
    /// relative, the body streamed.
    pub(crate) fn relay(&self, response: http::Response<Incoming>) -> Response {
        let (mut parts, body) = response.into_parts();
        self.clean_headers(&mut parts.headers);
        Response::from_parts(parts, Body::new(body))
    }

    /// Drops hop-by-hop headers and makes `Location` and `Link` relative to the proxy.
    pub(crate) fn clean_headers(&self, headers: &mut HeaderMap) {
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        for name in [header::LOCATION, header::LINK] {
            let rewritten: Vec<HeaderValue> = headers
                .get_all(&name)
                .iter()
                .filter_map(|value| {
                    HeaderValue::from_str(&self.relative(value.to_str().ok()?)).ok()
                })
                .collect();
            if rewritten.is_empty() {
                continue;
            }
            headers.remove(&name);
            for value in rewritten {
                headers.append(&name, value);
            }
        }
    }

    /// A URL (or a `Link` value) of the registry's made relative to it, so it names the proxy.
    pub(crate) fn relative(&self, url: &str) -> String {
        match url.strip_prefix(&self.origin) {
            Some(rest) => rest.to_owned(),
            None => url.replace(&format!("<{}", self.origin), "<"),
        }
    }

    /// Whether the registry has `digest` in `repository` (`kind`: `blobs` or `manifests`).
    pub(crate) async fn has(
        &self,
        repository: &str,
        kind: &str,
        digest: &str,
    ) -> Result<Option<bool>, UpstreamError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ALL_MANIFEST_TYPES));
        let path = format!("/v2/{repository}/{kind}/{digest}");
        let response = self
            .call(Method::HEAD, &path, &headers, Body::empty())
            .await?;
        Ok(match response.status() {
            StatusCode::OK => Some(true),
            StatusCode::NOT_FOUND => Some(false),
            _ => None,
        })
    }
}

/// Every manifest type the proxy passes through, for requests that name none.
pub(crate) const ALL_MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_origins_are_upstreams() {
        for (url, ok) in [
            ("http://127.0.0.1:5001", true),
            ("http://registry:5000/", true),
            ("https://registry:5000", false),
            ("http://registry:5000/prefix", false),
            ("registry:5000", false),
        ] {
            assert_eq!(Upstream::new(url).is_ok(), ok, "{url}");
        }
    }

    #[tokio::test]
    async fn the_registrys_urls_become_relative() {
        let upstream = Upstream::new("http://127.0.0.1:5001").expect("upstream");
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (
                header::LOCATION,
                "http://127.0.0.1:5001/v2/go/blobs/uploads/u?_state=x",
            ),
            (
                header::LINK,
                "<http://127.0.0.1:5001/v2/_catalog?last=a&n=1>; rel=\"next\"",
            ),
            (header::CONNECTION, "keep-alive"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        upstream.clean_headers(&mut headers);
        assert_eq!(headers[header::LOCATION], "/v2/go/blobs/uploads/u?_state=x");
        assert_eq!(
            headers[header::LINK],
            "</v2/_catalog?last=a&n=1>; rel=\"next\""
        );
        assert!(!headers.contains_key(header::CONNECTION));
    }
}
