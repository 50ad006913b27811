//! Where a build's custom buildpack comes from (`BUILDPACK_URL`, `<git url>[#<ref>]`). A
//! repository on the network is cloned by the build container itself, on the apps' network with
//! no identity of the host's ([`CLONE`]), so `BUILDPACK_URL` reaches only what an app could
//! reach. A `file://` repository below the operator's folder of buildpacks is read on the
//! builder's host (no network is involved) and uploaded.

use std::path::{Path, PathBuf};

/// Why a `BUILDPACK_URL` cannot be used or fetched; the text is what the pushing user reads.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("BUILDPACK_URL {url} cannot be used: the part after # names a branch or tag")]
    Reference { url: String },
    /// Not a URL a build may fetch (`deis_types::buildpack_source`).
    #[error(transparent)]
    Url(#[from] deis_types::BuildpackUrlError),
    /// A `file://` repository this platform does not lend to builds.
    #[error("BUILDPACK_URL {repo} cannot be used: {why}")]
    Refused { repo: String, why: Refusal },
    #[error("cannot prepare the buildpack fetch: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git cannot run: {0}")]
    Git(#[source] std::io::Error),
    #[error("the buildpack {url} cannot be fetched: {stderr}")]
    Clone { url: String, stderr: String },
    #[error("the buildpack {url} takes more than {} MiB", BUILDPACK_MAX >> 20)]
    TooLarge { url: String },
    /// The fetched buildpack could not be archived for the build container.
    #[error("{source}")]
    Archive {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// The archiving task did not finish.
    #[error("{0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Why a `file://` buildpack is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error(
        "this platform has no folder of local buildpacks (the builder's --buildpacks-dir); use an https:// or git:// repository"
    )]
    NoFolder,
    #[error("it points into the builder's data")]
    IntoData,
    #[error("local buildpacks must be below {}", .folder.display())]
    Outside { folder: PathBuf },
}

/// A checked `BUILDPACK_URL`.
#[derive(Debug)]
pub(crate) enum Buildpack {
    /// Cloned by the build container: the repository and the branch or tag, if one was named.
    Clone {
        repo: String,
        reference: Option<String>,
    },
    /// Read from the operator's folder: a tar archive of the buildpack.
    Local(Vec<u8>),
}

/// The build container's part for [`Buildpack::Clone`] (`sh`, run before the compile): git as a
/// stranger would run it (no configuration, credentials, prompts, redirects or local
/// transports), the clone capped in size, its history dropped.
pub(crate) const CLONE: &str = r#"if [ -n "$DEIS_BUILDPACK_REPO" ]; then
  echo "-----> Fetching custom buildpack"
  command -v git >/dev/null 2>&1 || { echo "-----> The stack image has no git, which BUILDPACK_URL needs; use a stack image with git"; exit 1; }
  mkdir -p /tmp/deis-git-home
  HOME=/tmp/deis-git-home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false \
    git -c protocol.ext.allow=never -c protocol.file.allow=never -c http.followRedirects=false -c credential.helper= \
    clone --quiet --depth 1 ${DEIS_BUILDPACK_REF:+--branch "$DEIS_BUILDPACK_REF"} -- "$DEIS_BUILDPACK_REPO" /build/buildpack \
    || { echo "-----> The buildpack $DEIS_BUILDPACK_REPO cannot be fetched"; exit 1; }
  rm -rf /build/buildpack/.git
  size=$(du -sk /build/buildpack | cut -f1)
  [ "$size" -le __MAX_KIB__ ] || { echo "-----> The buildpack takes more than __MAX_MIB__ MiB"; exit 1; }
fi
"#;

/// The most a buildpack may take once fetched.
pub(crate) const BUILDPACK_MAX: u64 = 256 << 20;

/// The clone script with its size cap filled in.
pub(crate) fn clone_script() -> String {
    CLONE
        .replace("__MAX_KIB__", &(BUILDPACK_MAX >> 10).to_string())
        .replace("__MAX_MIB__", &(BUILDPACK_MAX >> 20).to_string())
}

/// The environment the clone script reads (set after the app's config, which cannot override it).
pub(crate) fn clone_env(buildpack: Option<&Buildpack>) -> Vec<String> {
    match buildpack {
        Some(Buildpack::Clone { repo, reference }) => {
            let mut env = vec![format!("DEIS_BUILDPACK_REPO={repo}")];
            if let Some(reference) = reference {
                env.push(format!("DEIS_BUILDPACK_REF={reference}"));
            }
            env
        }
        _ => vec!["DEIS_BUILDPACK_REPO=".to_owned()],
    }
}

/// Checks `url` and, for a local buildpack, reads it.
pub(crate) async fn resolve(
    url: &str,
    scratch: &Path,
    data_dir: &Path,
    buildpacks: Option<&Path>,
) -> Result<Buildpack, FetchError> {
    let (repo, reference) = match url.split_once('#') {
        Some((repo, reference)) if !reference.is_empty() => (repo, Some(reference)),
        _ => (url, None),
    };
    if let Some(reference) = reference
        && (reference.starts_with('-')
            || reference.len() > 255
            || reference
                .chars()
                .any(|c| c.is_control() || c.is_whitespace()))
    {
        return Err(FetchError::Reference {
            url: url.to_owned(),
        });
    }
    match allowed(repo, data_dir, buildpacks)? {
        Source::Network => Ok(Buildpack::Clone {
            repo: repo.to_owned(),
            reference: reference.map(str::to_owned),
        }),
        Source::File => Ok(Buildpack::Local(
            clone_local(url, repo, reference, scratch).await?,
        )),
    }
}

enum Source {
    Network,
    File,
}

/// Whether `repo` may be cloned as a buildpack (`deis_types::buildpack_source`): a network
/// repository, or a `file://` one below the operator's `buildpacks` folder and outside the
/// builder's own data (where other apps' repositories live).
fn allowed(repo: &str, data_dir: &Path, buildpacks: Option<&Path>) -> Result<Source, FetchError> {
    let refused = |why| {
        Err(FetchError::Refused {
            repo: repo.to_owned(),
            why,
        })
    };
    match deis_types::buildpack_source(repo)? {
        deis_types::BuildpackSource::Network(_) => Ok(Source::Network),
        deis_types::BuildpackSource::File(path) => {
            let Some(folder) = buildpacks else {
                return refused(Refusal::NoFolder);
            };
            let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
            let resolved = canonical(path);
            if resolved.starts_with(canonical(data_dir)) {
                return refused(Refusal::IntoData);
            }
            if !resolved.starts_with(canonical(folder)) {
                return refused(Refusal::Outside {
                    folder: folder.to_owned(),
                });
            }
            Ok(Source::File)
        }
    }
}

/// The bytes of the files below `dir` (symbolic links not followed).
async fn tree_size(dir: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || {
        let mut total = 0u64;
        let mut pending = vec![dir];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                match entry.metadata() {
                    Ok(m) if m.is_dir() => pending.push(entry.path()),
                    Ok(m) => total = total.saturating_add(m.len()),
                    Err(_) => {}
                }
            }
        }
        total
    })
    .await
    .unwrap_or(u64::MAX)
}

/// Clones a local (`file://`) repository `repo` at `reference` and archives it.
async fn clone_local(
    url: &str,
    repo: &str,
    reference: Option<&str>,
    scratch: &Path,
) -> Result<Vec<u8>, FetchError> {
    let dir = scratch.join("buildpack");
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let home = scratch.join("buildpack-home");
    let _ = tokio::fs::remove_dir_all(&home).await;
    tokio::fs::create_dir_all(&home)
        .await
        .map_err(|source| FetchError::Prepare {
            path: home.clone(),
            source,
        })?;
    let mut command = tokio::process::Command::new("git");
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Only the local transport: nothing on the network is fetched from the host.
        .env("GIT_ALLOW_PROTOCOL", "file");
    command.args(["clone", "--quiet", "--depth", "1"]);
    if let Some(reference) = reference {
        command.args(["--branch", reference]);
    }
    command.arg("--").arg(repo).arg(&dir).kill_on_drop(true);
    let output = command.output().await.map_err(FetchError::Git)?;
    if !output.status.success() {
        return Err(FetchError::Clone {
            url: url.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let _ = tokio::fs::remove_dir_all(dir.join(".git")).await;
    if tree_size(dir.clone()).await > BUILDPACK_MAX {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
        });
    }
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder
            .append_dir_all(".", &dir)
            .and_then(|()| builder.into_inner())
            .map_err(|source| FetchError::Archive { url, source })
    })
    .await
    .map_err(FetchError::Task)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn network_repositories_are_left_to_the_build_container() {
        let data = tempfile::tempdir().expect("dir");
        let url = "https://example.org/buildpack.git#v2";
        match resolve(url, data.path(), data.path(), None).await {
            Ok(Buildpack::Clone { repo, reference }) => {
                assert_eq!(repo, "https://example.org/buildpack.git");
                assert_eq!(reference.as_deref(), Some("v2"));
            }
            other => panic!("{other:?}"),
        }
        let err = resolve(
            "https://example.org/bp.git#--upload-pack=x",
            data.path(),
            data.path(),
            None,
        )
        .await
        .expect_err("an option as the ref");
        assert_eq!(
            err.to_string(),
            "BUILDPACK_URL https://example.org/bp.git#--upload-pack=x cannot be used: the part after # names a branch or tag"
        );
        let env = clone_env(None);
        assert_eq!(
            env,
            ["DEIS_BUILDPACK_REPO="],
            "an app's own value is overridden"
        );
    }

    #[test]
    fn the_clone_script_is_valid_shell() {
        let script = clone_script();
        assert!(!script.contains("__MAX"), "{script}");
        let checked = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .status()
            .expect("sh runs");
        assert!(checked.success());
    }

    #[test]
    fn buildpack_urls_may_not_reach_into_the_builders_data() {
        let data = tempfile::tempdir().expect("dir");
        let buildpacks = tempfile::tempdir().expect("dir");
        let folder = Some(buildpacks.path());
        let repos = data.path().join("repos");
        std::fs::create_dir_all(repos.join("victim.git")).expect("repo");
        let victim = format!("file://{}", repos.join("victim.git").display());
        assert!(allowed(&victim, data.path(), folder).is_err());
        let sneaky = format!(
            "file://{}/../{}/repos/victim.git",
            buildpacks.path().display(),
            data.path().display()
        );
        assert!(allowed(&sneaky, data.path(), folder).is_err(), "{sneaky}");
        let escaped = victim.replace("repos", "rep%6fs");
        assert!(allowed(&escaped, data.path(), folder).is_err(), "{escaped}");
        assert!(
            allowed(
                &repos.join("victim.git").display().to_string(),
                data.path(),
                folder
            )
            .is_err(),
            "a bare path"
        );
        assert!(allowed("--upload-pack=touch /tmp/x", data.path(), folder).is_err());
        assert!(
            allowed("git@github.com:me/buildpack.git", data.path(), folder).is_err(),
            "the host's SSH identity is not lent to builds"
        );
        assert!(
            allowed(
                "https://github.com/heroku/heroku-buildpack-go.git",
                data.path(),
                folder
            )
            .is_ok()
        );
        let inside = format!("file://{}/static", buildpacks.path().display());
        assert!(allowed(&inside, data.path(), folder).is_ok());
        let refused = allowed(&inside, data.path(), None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            refused,
            Some(format!(
                "BUILDPACK_URL {inside} cannot be used: this platform has no folder of local buildpacks (the builder's --buildpacks-dir); use an https:// or git:// repository"
            )),
            "no folder, no local buildpacks"
        );
        let elsewhere = tempfile::tempdir().expect("dir");
        assert!(
            allowed(
                &format!("file://{}", elsewhere.path().display()),
                data.path(),
                folder
            )
            .is_err()
        );
    }
}
