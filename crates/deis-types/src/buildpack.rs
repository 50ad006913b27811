//! Which `BUILDPACK_URL`s a build may fetch: `https://`, `http://` and `git://` repositories
//! (optionally `#ref`), and `file://` repositories below a folder of buildpacks the operator
//! provides. Nothing else: no `ssh://` or `user@host:path` (it would use the host's identity), no
//! `ext::`, no option-like values, and `file://` paths are plain absolute paths (no `%`
//! escapes, `..` or host part), so they cannot reach the builder's own data (other apps'
//! repositories). The controller checks this when the value is set, the builder before it
//! fetches.

/// Why a `BUILDPACK_URL` is refused; the text says what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BUILDPACK_URL {url} cannot be used: {reason}")]
pub struct BuildpackUrlError {
    url: String,
    reason: String,
}

/// A `BUILDPACK_URL` that passed the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildpackSource<'a> {
    /// A repository on the network (`https://`, `http://`, `git://`).
    Network(&'a str),
    /// A local repository: an absolute path, to be found below the operator's folder.
    File(&'a std::path::Path),
}

/// Checks `url` (without its `#ref`).
pub fn buildpack_source(url: &str) -> Result<BuildpackSource<'_>, BuildpackUrlError> {
    let refuse = |reason: &str| BuildpackUrlError {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse(
            "it is too long or holds spaces or control characters",
        ));
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(refuse(
                "a file:// URL names an absolute path (file:///path)",
            ));
        }
        if path.contains('%') || path.split('/').any(|part| part == "..") {
            return Err(refuse("a file:// path may hold no % escapes and no .."));
        }
        return Ok(BuildpackSource::File(std::path::Path::new(path)));
    }
    for scheme in ["https://", "http://", "git://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let host = rest.split('/').next().unwrap_or_default();
            if host.is_empty() || host.starts_with('-') || host.contains('@') {
                return Err(refuse("the URL names no usable host"));
            }
            return Ok(BuildpackSource::Network(url));
        }
    }
    Err(refuse(
        "use an https://, http:// or git:// repository (or file:// below the platform's buildpacks folder)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_repositories_and_plain_file_paths_pass() {
        for ok in [
            "https://github.com/heroku/heroku-buildpack-go.git",
            "http://git.example.com/bp.git",
            "git://git.example.com/bp.git",
        ] {
            assert_eq!(buildpack_source(ok), Ok(BuildpackSource::Network(ok)));
        }
        assert_eq!(
            buildpack_source("file:///srv/buildpacks/static"),
            Ok(BuildpackSource::File(std::path::Path::new(
                "/srv/buildpacks/static"
            )))
        );
    }

    #[test]
    fn what_reaches_the_host_or_the_builders_data_is_refused() {
        for bad in [
            "ssh://git@github.com/x/y.git",
            "git@github.com:x/y.git",
            "ext::sh -c touch% /tmp/x",
            "--upload-pack=touch /tmp/x",
            "/var/lib/deis/builder/repos/victim.git",
            "file:///var/lib/deis/buil%64er/repos/victim.git",
            "file://x/var/lib/deis/builder/repos/victim.git",
            "file:///srv/buildpacks/../../var/lib/deis/builder/repos/victim.git",
            "https://-oProxyCommand=x/y",
            "https://user@host/y",
            "https:// host/y",
            "",
        ] {
            assert!(buildpack_source(bad).is_err(), "{bad}");
        }
    }
}
