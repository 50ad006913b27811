//! The bare repository of each app, its pre-receive hook, and the git commands a build needs.
//!
//! The hook is a few lines of `sh` that hand the pushed refs (and git's quarantine directories,
//! where the pushed objects wait until the hook accepts them) to the builder through a FIFO the
//! builder created for this push, relay the build's output from a second FIFO, and exit with the
//! status the builder wrote: the push succeeds only if the build and deploy did.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// The pre-receive hook installed in every repository.
const HOOK: &str = r#"#!/bin/sh
# Installed by the Deis builder: hands the push to the builder and relays its verdict.
[ -n "$DEIS_PUSH_DIR" ] || { echo "pushes are only accepted through the Deis builder"; exit 1; }
{ printf '%s\n%s\n' "$GIT_OBJECT_DIRECTORY" "$GIT_ALTERNATE_OBJECT_DIRECTORIES"; cat; } > "$DEIS_PUSH_DIR/refs"
cat "$DEIS_PUSH_DIR/output"
exit "$(cat "$DEIS_PUSH_DIR/status" 2>/dev/null || echo 1)"
"#;

/// A git command that failed; `what` is the command (`init`, `archive --format=tar <sha>`...).
#[derive(Debug, thiserror::Error)]
pub(crate) enum GitError {
    #[error("git {what} failed: git is not installed (apt-get install -y git)")]
    NotInstalled {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("git {what} failed: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("git {what} failed: no output pipes")]
    NoPipes { what: String },
    #[error(
        "git {what} failed: the commit's files take more than {} MiB, the most a build takes",
        .cap >> 20
    )]
    TooLarge { what: String, cap: u64 },
    /// git exited non-zero: the start of what it said.
    #[error("git {what} failed: {stderr}")]
    Failed { what: String, stderr: String },
}

/// The objects a pre-receive hook sees (quarantined until the hook succeeds).
#[derive(Debug, Clone, Default)]
pub(crate) struct Quarantine {
    pub(crate) objects: String,
    pub(crate) alternates: String,
}

/// An app's bare repository.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) path: PathBuf,
}

impl Repo {
    /// The repository of `app` under `root`, created (with its hook) on first use.
    pub(crate) async fn open(root: &Path, app: &str) -> Result<Repo, GitError> {
        let path = root.join(format!("{app}.git"));
        let repo = Repo { path };
        if !repo.path.join("HEAD").exists() {
            tokio::fs::create_dir_all(&repo.path)
                .await
                .map_err(|e| git_error("init", e))?;
            repo.git(
                &["init", "--quiet", "--bare", "--initial-branch=master"],
                None,
                64 * 1024,
            )
            .await?;
        }
        let hook = repo.path.join("hooks/pre-receive");
        let current = tokio::fs::read_to_string(&hook).await.unwrap_or_default();
        if current != HOOK {
            tokio::fs::create_dir_all(repo.path.join("hooks"))
                .await
                .map_err(|e| git_error("hook", e))?;
            tokio::fs::write(&hook, HOOK)
                .await
                .map_err(|e| git_error("hook", e))?;
            set_executable(&hook).map_err(|e| git_error("hook", e))?;
        }
        Ok(repo)
    }

    /// Runs `git args` in the repository; its standard output, of at most `cap` bytes (git is
    /// stopped past it: a small push of delta-chained objects can expand to gigabytes).
    pub(crate) async fn git(
        &self,
        args: &[&str],
        quarantine: Option<&Quarantine>,
        cap: u64,
    ) -> Result<Vec<u8>, GitError> {
        use tokio::io::AsyncReadExt;
        let what = || args.join(" ");
        let mut command = Command::new("git");
        command
            .args(args)
            .current_dir(&self.path)
            .env("GIT_DIR", &self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(q) = quarantine {
            if !q.objects.is_empty() {
                command.env("GIT_OBJECT_DIRECTORY", &q.objects);
            }
            if !q.alternates.is_empty() {
                command.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &q.alternates);
            }
        }
        let command_name = args.first().copied().unwrap_or("git");
        let mut child = command.spawn().map_err(|e| git_error(command_name, e))?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(GitError::NoPipes { what: what() });
        };
        let mut out = Vec::new();
        let reading = async {
            let read = stdout
                .take(cap.saturating_add(1))
                .read_to_end(&mut out)
                .await;
            if out.len() as u64 > cap {
                // Past the cap: git is stopped, which also ends its messages.
                let _ = child.start_kill();
            }
            read
        };
        // git's messages, read alongside: the first 64 KiB kept, the rest dropped.
        let messages = async {
            let mut err = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut err).await;
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            err
        };
        let (read, err) = tokio::join!(reading, messages);
        let status = child.wait().await;
        if out.len() as u64 > cap {
            return Err(GitError::TooLarge { what: what(), cap });
        }
        read.map_err(|e| git_error(command_name, e))?;
        if !status.map_err(|e| git_error(command_name, e))?.success() {
            return Err(GitError::Failed {
                what: what(),
                stderr: String::from_utf8_lossy(&err).trim().to_owned(),
            });
        }
        Ok(out)
    }

    /// A file of the commit (at most 1 MiB: a Procfile or a Dockerfile), if it exists.
    pub(crate) async fn file(&self, sha: &str, name: &str, q: &Quarantine) -> Option<Vec<u8>> {
        self.git(
            &["cat-file", "blob", &format!("{sha}:{name}")],
            Some(q),
            1 << 20,
        )
        .await
        .ok()
    }

    /// The commit's tree as a tar archive of at most `cap` bytes.
    pub(crate) async fn archive(
        &self,
        sha: &str,
        q: &Quarantine,
        cap: u64,
    ) -> Result<Vec<u8>, GitError> {
        self.git(&["archive", "--format=tar", sha], Some(q), cap)
            .await
    }
}

fn git_error(what: &str, source: std::io::Error) -> GitError {
    let what = what.to_owned();
    if source.kind() == std::io::ErrorKind::NotFound {
        GitError::NotInstalled { what, source }
    } else {
        GitError::Io { what, source }
    }
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// One line a pre-receive hook reads: `old new ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefUpdate {
    pub(crate) old: String,
    pub(crate) new: String,
    pub(crate) name: String,
}

/// What the hook handed over: the quarantine and the updated refs.
pub(crate) fn parse_hook_input(text: &str) -> (Quarantine, Vec<RefUpdate>) {
    let mut lines = text.lines();
    let quarantine = Quarantine {
        objects: lines.next().unwrap_or_default().to_owned(),
        alternates: lines.next().unwrap_or_default().to_owned(),
    };
    let refs = lines
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(RefUpdate {
                old: words.next()?.to_owned(),
                new: words.next()?.to_owned(),
                name: words.next()?.to_owned(),
            })
        })
        .collect();
    (quarantine, refs)
}

/// The ref to build: `master` (or `main`) when pushed, else the last one; none for deletions.
pub(crate) fn ref_to_build(refs: &[RefUpdate]) -> Option<&RefUpdate> {
    let live = |r: &&RefUpdate| !r.new.bytes().all(|b| b == b'0');
    refs.iter()
        .filter(live)
        .find(|r| r.name == "refs/heads/master" || r.name == "refs/heads/main")
        .or_else(|| refs.iter().rev().find(live))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit of one file of `size` zero bytes (a few hundred bytes once compressed).
    fn commit_of_zeros(repo: &Path, size: usize) -> String {
        let git = |args: &[&str], input: Option<&[u8]>| -> String {
            use std::io::Write;
            let mut child = std::process::Command::new("git")
                .env("GIT_DIR", repo)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("git runs");
            if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
                stdin.write_all(input).expect("write");
            }
            let out = child.wait_with_output().expect("git finishes");
            assert!(out.status.success(), "git {args:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let blob = git(&["hash-object", "-w", "--stdin"], Some(&vec![0u8; size]));
        let tree = git(
            &["mktree"],
            Some(format!("100644 blob {blob}\tbig\n").as_bytes()),
        );
        git(&["commit-tree", &tree, "-m", "zeros"], None)
    }

    #[tokio::test]
    async fn a_commit_whose_files_expand_past_the_limit_is_not_read() {
        let dir = tempfile::tempdir().expect("dir");
        let repo = Repo::open(dir.path(), "zeros").await.expect("repository");
        let sha = commit_of_zeros(&repo.path, 3 << 20);
        let refused = repo
            .archive(&sha, &Quarantine::default(), 1 << 20)
            .await
            .expect_err("over the limit");
        assert!(
            refused.to_string().contains("take more than 1 MiB"),
            "{refused}"
        );
        let archive = repo
            .archive(&sha, &Quarantine::default(), 8 << 20)
            .await
            .expect("within the limit");
        assert!(archive.len() > 3 << 20);
    }

    #[test]
    fn hook_input_gives_quarantine_and_refs() {
        let zeros = "0".repeat(40);
        let text = format!(
            "/r/objects/incoming\n/r/objects\n{zeros} {a} refs/heads/topic\n{zeros} {b} refs/heads/master\n{b} {zeros} refs/heads/old\n",
            a = "a".repeat(40),
            b = "b".repeat(40)
        );
        let (q, refs) = parse_hook_input(&text);
        assert_eq!(q.objects, "/r/objects/incoming");
        assert_eq!(refs.len(), 3);
        assert_eq!(
            ref_to_build(&refs).map(|r| r.new.clone()),
            Some("b".repeat(40))
        );
        assert_eq!(ref_to_build(&refs[2..]), None, "a deletion builds nothing");
        assert_eq!(
            ref_to_build(&refs[..1]).map(|r| r.name.as_str()),
            Some("refs/heads/topic")
        );
    }
}
