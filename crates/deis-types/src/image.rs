//! Which images an app may run. The builder names the images it makes `[registry/]{app}:git-{sha}`:
//! that namespace belongs to the app, so no other app may deploy (and so read) another's built
//! code. Platform component images (`deis/<component>`) are never apps. Docker also resolves a bare
//! hexadecimal string as a prefix of any local image's ID, which would reach images by chance:
//! such references are refused too.

/// The platform's component images (`deis/<component>`, reference §9.2 and deisctl's).
const PLATFORM: [&str; 11] = [
    "builder",
    "cache",
    "controller",
    "database",
    "etcd",
    "logger",
    "logspout",
    "publisher",
    "registry",
    "router",
    "registry-proxy",
];

/// Why an image may not be used, with the message the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an image reference at all.
    #[error("{0}")]
    Invalid(String),
    /// Someone else's, or the platform's.
    #[error("{0}")]
    NotYours(String),
}

/// A reference's parts: `[registry/]path[:tag][@digest]`.
struct Reference<'a> {
    /// The repository path without the registry host.
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

fn parse(image: &str) -> Result<Reference<'_>, Refused> {
    let invalid = || {
        Refused::Invalid(format!(
            "{image:?} is not an image reference (repository[:tag], e.g. registry.example.com/shop:1.2)"
        ))
    };
    if image.is_empty()
        || image.len() > 256
        || !image.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@')
        })
    {
        return Err(invalid());
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    };
    let path = match repository.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => repository,
    };
    if path.is_empty() || path.split('/').any(str::is_empty) || tag == Some("") {
        return Err(invalid());
    }
    Ok(Reference { path, tag, digest })
}

/// Whether `app` may deploy `image`.
pub fn check(image: &str, app: &str) -> Result<(), Refused> {
    let reference = parse(image)?;
    let path = reference.path.to_ascii_lowercase();
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if image.starts_with("sha256:")
        || (reference.tag.is_none() && reference.digest.is_none() && is_hex(image))
    {
        return Err(Refused::Invalid(format!(
            "{image} looks like an image ID; name the image with its repository and tag (e.g. {image}:latest if that is its name)"
        )));
    }
    if let Some(component) = path.strip_prefix("deis/")
        && PLATFORM
            .iter()
            .any(|c| component == *c || component.starts_with("store-"))
    {
        return Err(Refused::NotYours(format!(
            "Repository name {image} is not allowed: it is one of the platform's own images"
        )));
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    let built = reference.tag.is_some_and(|t| t.starts_with("git-"));
    if built && name != app {
        return Err(Refused::NotYours(format!(
            "{image} was built for the app {name}; only that app may run it"
        )));
    }
    Ok(())
}

/// Checks every image a Dockerfile names (`FROM`, `COPY --from=`, `RUN --mount=...from=`) for
/// `app`: a build must not read what `deploy` would refuse. Stage names are allowed, and
/// variables (`FROM $BASE`) are refused, since their value is not known here.
pub fn check_dockerfile(text: &str, app: &str) -> Result<(), Refused> {
    let mut stages: Vec<String> = Vec::new();
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(instruction) = words.first() else {
            continue;
        };
        let mut references: Vec<&str> = Vec::new();
        if instruction.eq_ignore_ascii_case("FROM") {
            let rest: Vec<&str> = words[1..]
                .iter()
                .copied()
                .filter(|w| !w.starts_with("--"))
                .collect();
            if let Some(image) = rest.first() {
                references.push(image);
            }
            if rest.len() >= 3 && rest[1].eq_ignore_ascii_case("AS") {
                stages.push(rest[2].to_ascii_lowercase());
            }
        }
        for word in &words[1..] {
            if let Some(from) = word.strip_prefix("--from=") {
                references.push(from);
            }
            if let Some(mount) = word.strip_prefix("--mount=") {
                references.extend(mount.split(',').filter_map(|kv| kv.strip_prefix("from=")));
            }
        }
        for reference in references {
            if reference.contains('$') {
                return Err(Refused::Invalid(format!(
                    "the Dockerfile names an image through a variable ({reference}); name it as it is"
                )));
            }
            let lower = reference.to_ascii_lowercase();
            if lower == "scratch"
                || stages.contains(&lower)
                || reference.bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            check(reference, app)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dockerfile_may_not_build_on_what_the_app_may_not_run() {
        let ok = "FROM busybox AS base\nFROM base\nCOPY --from=base /x /y\nFROM scratch\nCOPY --from=0 /a /b\nFROM shop:git-0123456\n";
        assert_eq!(check_dockerfile(ok, "shop"), Ok(()));
        for bad in [
            "FROM victim:git-0123456\n",
            "from --platform=linux/amd64 victim:git-0123456 as x\n",
            "FROM busybox\nCOPY --from=victim:git-abc /app /stolen\n",
            "FROM busybox\nRUN --mount=type=bind,from=victim:git-abc,target=/v cat /v/x\n",
            "FROM a3\n",
            "ARG BASE=victim:git-abc\nFROM $BASE\n",
            "FROM deis/controller:latest\n",
            "FROM \\\n  victim:git-0123456\n",
        ] {
            assert!(check_dockerfile(bad, "shop").is_err(), "{bad}");
        }
    }

    #[test]
    fn an_app_runs_its_own_builds_and_any_other_image() {
        for ok in [
            "shop:git-0123456",
            "127.0.0.1:5000/shop:git-0123456",
            "registry.example.com/team/shop:git-abc",
            "redis:7",
            "registry.example.com/victim:1.0",
            "localhost/my-web-image:latest",
            "busybox",
            "deis/example-go:latest",
            "example/app@sha256:0123456789abcdef",
        ] {
            assert_eq!(check(ok, "shop"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn another_apps_builds_platform_images_and_ids_are_refused() {
        for (image, not_yours) in [
            ("victim:git-0123456", true),
            ("127.0.0.1:5000/victim:git-0123456", true),
            ("deis/controller:latest", true),
            ("registry.example.com/deis/builder:v1", true),
            ("deis/store-monitor", true),
            ("sha256:0123456789abcdef", false),
            ("0123abc", false),
            ("cafe", false),
            ("", false),
            ("shop:", false),
            ("shop;rm -rf /", false),
            ("a//b:1", false),
        ] {
            match check(image, "shop") {
                Err(Refused::NotYours(_)) => assert!(not_yours, "{image}"),
                Err(Refused::Invalid(_)) => assert!(!not_yours, "{image}"),
                Ok(()) => panic!("{image} was accepted"),
            }
        }
        assert_eq!(
            check("victim:git-0123456", "shop").map_err(|e| e.to_string()),
            Err("victim:git-0123456 was built for the app victim; only that app may run it".into())
        );
    }
}
