//! The distribution API's paths, parsed into what a request is about: repository names, tags
//! and digests as the OCI distribution spec defines them, checked before anything else sees them.

use std::fmt;

/// The longest repository name distribution accepts.
const MAX_NAME: usize = 255;
/// The longest digest accepted (`sha512:` and 128 hex digits fit).
const MAX_DIGEST: usize = 256;
/// The longest upload id accepted (distribution's are UUIDs).
const MAX_UPLOAD_ID: usize = 128;

/// A repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` components joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Repository(String);

impl Repository {
    pub(crate) fn parse(s: &str) -> Option<Repository> {
        (!s.is_empty() && s.len() <= MAX_NAME && s.split('/').all(valid_component))
            .then(|| Repository(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Alphanumeric runs joined by `.`, `_`, `__` or a run of `-`.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

/// A content digest `algorithm:encoded`; only `sha256` ones are cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Digest(String);

impl Digest {
    pub(crate) fn parse(s: &str) -> Option<Digest> {
        let (algorithm, encoded) = s.split_once(':')?;
        let valid = s.len() <= MAX_DIGEST
            && !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
        let sha256_ok = algorithm != "sha256" || Sha256Hex::parse(encoded).is_some();
        (valid && sha256_ok).then(|| Digest(s.to_owned()))
    }

    /// The hex of a `sha256:` digest, the only kind the cache keeps.
    pub(crate) fn sha256(&self) -> Option<Sha256Hex> {
        self.0.strip_prefix("sha256:").and_then(Sha256Hex::parse)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64 lower-case hex digits: a SHA-256, and the name of its file in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Sha256Hex(String);

impl Sha256Hex {
    pub(crate) fn parse(s: &str) -> Option<Sha256Hex> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Sha256Hex(s.to_owned()))
    }

    /// The hash of finished SHA-256 state.
    pub(crate) fn of(hasher: sha2::Sha256) -> Sha256Hex {
        use sha2::Digest as _;
        Sha256Hex(hex::encode(hasher.finalize()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn digest(&self) -> Digest {
        Digest(format!("sha256:{}", self.0))
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Tag(String);

impl Tag {
    pub(crate) fn parse(s: &str) -> Option<Tag> {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let bytes = s.as_bytes();
        let valid = matches!(bytes.first(), Some(&b) if word(b))
            && bytes.len() <= 128
            && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
        valid.then(|| Tag(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a manifest is asked for by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    fn parse(s: &str) -> Option<Reference> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t.as_str()),
            Reference::Digest(d) => f.write_str(d.as_str()),
        }
    }
}

/// An endpoint of the distribution API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(Repository),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(Repository, Reference),
    /// `/v2/<name>/blobs/<digest>`
    Blob(Repository, Digest),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(Repository),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(Repository, String),
}

/// Why a path is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteError {
    NotFound,
    NameInvalid,
    TagInvalid,
    DigestInvalid,
}

impl Route {
    /// The route of a request path (without its query).
    pub(crate) fn parse(path: &str) -> Result<Route, RouteError> {
        let rest = match path {
            "/v2" | "/v2/" => return Ok(Route::Base),
            "/v2/_catalog" => return Ok(Route::Catalog),
            _ => path.strip_prefix("/v2/").ok_or(RouteError::NotFound)?,
        };
        let name = |s: &str| Repository::parse(s).ok_or(RouteError::NameInvalid);
        if let Some(repo) = rest.strip_suffix("/tags/list") {
            return Ok(Route::Tags(name(repo)?));
        }
        if let Some((repo, reference)) = split_last(rest, "/manifests/") {
            let reference = Reference::parse(reference).ok_or(if reference.contains(':') {
                RouteError::DigestInvalid
            } else {
                RouteError::TagInvalid
            })?;
            return Ok(Route::Manifest(name(repo)?, reference));
        }
        if let Some((repo, id)) = split_last(rest, "/blobs/uploads/") {
            if id.is_empty() {
                return Ok(Route::UploadStart(name(repo)?));
            }
            let valid = id.len() <= MAX_UPLOAD_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            return if valid {
                Ok(Route::Upload(name(repo)?, id.to_owned()))
            } else {
                Err(RouteError::NotFound)
            };
        }
        if let Some(repo) = rest.strip_suffix("/blobs/uploads") {
            return Ok(Route::UploadStart(name(repo)?));
        }
        if let Some((repo, digest)) = split_last(rest, "/blobs/") {
            let digest = Digest::parse(digest).ok_or(RouteError::DigestInvalid)?;
            return Ok(Route::Blob(name(repo)?, digest));
        }
        Err(RouteError::NotFound)
    }

    /// The repository the request is about, if any.
    pub(crate) fn repository(&self) -> Option<&Repository> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags(r)
            | Route::Manifest(r, _)
            | Route::Blob(r, _)
            | Route::UploadStart(r)
            | Route::Upload(r, _) => Some(r),
        }
    }
}

/// `a/b<sep>c` → (`a/b`, `c`) when `c` holds no `/`.
fn split_last<'a>(s: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    s.rsplit_once(separator)
        .filter(|(_, last)| !last.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn check(path: &str, expect: &str) {
        let got = match Route::parse(path) {
            Ok(route) => format!("{route:?}"),
            Err(e) => format!("Err({e:?})"),
        };
        assert!(got.starts_with(expect), "{path}: {got}");
    }

    #[test]
    fn parses_every_endpoint() {
        check("/v2/", "Base");
        check("/v2", "Base");
        check("/v2/_catalog", "Catalog");
        check("/v2/go/tags/list", "Tags(Repository(\"go\"))");
        check("/v2/a/b-c/tags/list", "Tags(Repository(\"a/b-c\"))");
        check("/v2/go/manifests/v2", "Manifest(Repository(\"go\"), Tag");
        check(
            &format!("/v2/go/manifests/{D}"),
            "Manifest(Repository(\"go\"), Digest",
        );
        check(&format!("/v2/go/blobs/{D}"), "Blob(Repository(\"go\")");
        check("/v2/go/blobs/uploads/", "UploadStart(Repository(\"go\"))");
        check("/v2/go/blobs/uploads", "UploadStart(Repository(\"go\"))");
        check(
            "/v2/go/blobs/uploads/3c77-9f",
            "Upload(Repository(\"go\"), \"3c77-9f\")",
        );
        check(
            "/v2/a/manifests/b/manifests/latest",
            "Manifest(Repository(\"a/manifests/b\")",
        );
        check(
            &format!("/v2/x/blobs/uploads/y/blobs/{D}"),
            "Blob(Repository(\"x/blobs/uploads/y\")",
        );
    }

    #[test]
    fn rejects_what_the_spec_does_not_allow() {
        check("/v1/go", "Err(NotFound)");
        check("/v2/go", "Err(NotFound)");
        check("/v2/Go/tags/list", "Err(NameInvalid)");
        check("/v2/-go/tags/list", "Err(NameInvalid)");
        check("/v2/go-/tags/list", "Err(NameInvalid)");
        check("/v2/g..o/tags/list", "Err(NameInvalid)");
        check("/v2/g___o/tags/list", "Err(NameInvalid)");
        check("/v2/a//b/tags/list", "Err(NameInvalid)");
        check("/v2/../tags/list", "Err(NameInvalid)");
        check(
            &format!("/v2/{}/tags/list", "a".repeat(256)),
            "Err(NameInvalid)",
        );
        check("/v2/go/manifests/.hidden", "Err(TagInvalid)");
        check(
            &format!("/v2/go/manifests/{}", "a".repeat(129)),
            "Err(TagInvalid)",
        );
        check("/v2/go/manifests/sha256:abc", "Err(DigestInvalid)");
        check("/v2/go/blobs/latest", "Err(DigestInvalid)");
        check("/v2/go/blobs/sha256:ABC", "Err(DigestInvalid)");
        check("/v2/go/blobs/uploads/a%2Fb", "Err(NotFound)");
        check("/v2/go/blobs/uploads/../x", "Err(NotFound)");
    }

    #[test]
    fn names_allow_the_spec_separators() {
        for (name, ok) in [
            ("a", true),
            ("a.b_c__d---e", true),
            ("deis/go", true),
            ("a_", false),
            ("a.-b", false),
            ("a b", false),
            ("", false),
        ] {
            assert_eq!(Repository::parse(name).is_some(), ok, "{name}");
        }
    }

    #[test]
    fn only_sha256_digests_are_cacheable() {
        let sha = Digest::parse(D).expect("a digest");
        assert_eq!(sha.sha256().map(|h| h.digest()), Some(sha.clone()));
        let other = Digest::parse("sha512:abcd").expect("another algorithm");
        assert_eq!(other.sha256(), None);
    }
}
