//! What the engine's pull and push calls take: an image reference split into the repository
//! and its tag (or digest), the registry a reference names, and credentials for a registry.

use bollard::auth::DockerCredentials;

/// `image`'s repository (with its registry) and its tag or digest, `latest` when it has
/// neither: `127.0.0.1:5000/shop:git-1` is (`127.0.0.1:5000/shop`, `git-1`), and
/// `127.0.0.1:5000/shop` is (`127.0.0.1:5000/shop`, `latest`), never a tag `5000/shop`.
pub fn split_reference(image: &str) -> (&str, &str) {
    if let Some((repository, digest)) = image.split_once('@') {
        return (repository, digest);
    }
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (image, "latest"),
    }
}

/// The registry (`host[:port]`) `image` is pulled from when it names one: its first component
/// if that has a `.` or a `:` or is `localhost` (Docker's rule); `None` for Docker Hub's.
pub fn registry_of(image: &str) -> Option<&str> {
    let (host, _) = image.split_once('/')?;
    (host.contains(['.', ':']) || host == "localhost").then_some(host)
}

/// The credentials the engine presents to `serveraddress` (sent as `X-Registry-Auth`).
pub fn registry_credentials(
    username: &str,
    password: &str,
    serveraddress: &str,
) -> DockerCredentials {
    DockerCredentials {
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        serveraddress: Some(serveraddress.to_owned()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_the_engine_reads_them() {
        for (image, repository, tag, registry) in [
            ("shop:git-1234567", "shop", "git-1234567", None),
            ("busybox", "busybox", "latest", None),
            ("library/busybox:1", "library/busybox", "1", None),
            (
                "127.0.0.1:5000/shop:git-1",
                "127.0.0.1:5000/shop",
                "git-1",
                Some("127.0.0.1:5000"),
            ),
            (
                "127.0.0.1:5000/shop",
                "127.0.0.1:5000/shop",
                "latest",
                Some("127.0.0.1:5000"),
            ),
            (
                "registry.example.com/a/b@sha256:ab",
                "registry.example.com/a/b",
                "sha256:ab",
                Some("registry.example.com"),
            ),
            ("localhost/shop:1", "localhost/shop", "1", Some("localhost")),
        ] {
            assert_eq!(split_reference(image), (repository, tag), "{image}");
            assert_eq!(registry_of(image), registry, "{image}");
        }
    }
}
