//! `git push` over SSH to the builder: a Dockerfile app built, deployed and answering; a broken
//! build failing the push while the previous release keeps serving; the refusals (unknown key,
//! someone else's app, a shell); with a registry, images pushed there through the registry
//! proxy and pulled back when the engine lost them, and pushes over the limit refused; pushes
//! to one app waiting their turn, a clone of the app, and a build timing out.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use deis_testkit::eventually;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{serve, serving_dockerfile};
use crate::setup::{Options, Setup, SingleHost};
use crate::support::{SshKey, app_name, commit, docker_lines, http, work_tree};

/// A user registered through the API, with a key and an app of theirs, and a work tree with
/// one commit of `dockerfile`.
struct Pusher {
    token: String,
    key: SshKey,
    work: PathBuf,
}

async fn pusher(setup: &impl Setup, user: &str, app: &str, dockerfile: &str) -> Pusher {
    let token = setup.user(user).await;
    let key = setup.add_key(&token, "laptop").await;
    setup.create_app(&token, app).await;
    let work = work_tree(&setup.dir().join(app), &[("Dockerfile", dockerfile)]);
    Pusher { token, key, work }
}

pub(crate) async fn a_dockerfile_app_is_built_deployed_and_a_broken_build_changes_nothing(
    setup: &impl Setup,
) {
    let app = app_name("docker");
    let image = setup.base_image();
    let dockerfile = serving_dockerfile(&image, "hello-from-git");
    let Pusher { key, work, .. } = pusher(setup, "pusher", &app, &dockerfile).await;

    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(ok, "the push succeeds:\n{output}");
    assert!(output.contains("-----> Building Docker image"), "{output}");
    assert!(
        output.contains(": FROM "),
        "Docker's output is shown:\n{output}"
    );
    assert!(
        output.contains(&format!("done, {app}:v2 deployed to Deis")),
        "{output}"
    );
    assert!(
        output.contains(&format!("http://{app}.example.com")),
        "{output}"
    );
    // Deployed means serving: no waiting needed.
    assert_eq!(
        setup.get_app(&app).await,
        (200, "hello-from-git\n".to_owned()),
        "the new release serves as soon as the push returns"
    );

    // A broken Dockerfile fails the push with Docker's error; v2 keeps serving.
    commit(
        &work,
        &[(
            "Dockerfile",
            &format!("FROM {image}\nRUN no-such-command\n"),
        )],
        "broken",
    );
    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(!ok, "the push fails:\n{output}");
    assert!(
        output.contains("no-such-command"),
        "Docker's error is shown:\n{output}"
    );
    assert!(output.contains("Push rejected"), "{output}");
    assert!(output.contains("pre-receive hook declined"), "{output}");
    assert_eq!(
        setup.get_app(&app).await,
        (200, "hello-from-git\n".to_owned())
    );

    // An image that builds but never serves fails the push at the deploy; v2 keeps serving.
    commit(
        &work,
        &[("Dockerfile", &format!("FROM {image}\nCMD exit 3\n"))],
        "crashes",
    );
    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(!ok, "the push fails:\n{output}");
    assert!(
        output.contains("the release could not be deployed"),
        "the reason is shown:\n{output}"
    );
    assert_eq!(
        setup.get_app(&app).await,
        (200, "hello-from-git\n".to_owned())
    );

    // Fixing it deploys v3.
    commit(
        &work,
        &[("Dockerfile", &serving_dockerfile(&image, "fixed"))],
        "fixed",
    );
    let (ok, output) = setup.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(setup.get_app(&app).await, (200, "fixed\n".to_owned()));
}

pub(crate) async fn strangers_keys_and_shells_are_refused_with_their_reasons(setup: &impl Setup) {
    let app = app_name("private");
    let dockerfile = serving_dockerfile(&setup.base_image(), "x");
    let keeper = pusher(setup, "keeper", &app, &dockerfile).await;
    let (owner_key, work) = (&keeper.key, &keeper.work);
    let outsider = setup.user("outsider").await;
    let outsider_key = setup.add_key(&outsider, "outsider").await;

    // Someone else's app.
    let (ok, output) = setup.push(work, &outsider_key, &app).await;
    assert!(!ok);
    assert!(output.contains(&format!("{app}: push denied")), "{output}");

    // A key nobody registered.
    let unknown = SshKey::generate(setup.dir(), "unknown");
    let (ok, output) = setup.push(work, &unknown, &app).await;
    assert!(!ok);
    assert!(
        output.contains("belongs to no user: add it with `deis keys:add`"),
        "{output}"
    );

    // A shell, and an arbitrary command.
    let ssh = setup.ssh();
    for command in [None, Some("cat /etc/passwd")] {
        let line = format!(
            "{} -T -p {} git@{} {}",
            owner_key.ssh_command(),
            ssh.port(),
            ssh.ip(),
            command.unwrap_or("")
        );
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("ssh runs");
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{command:?}: {text}");
        let expected = if command.is_none() {
            "This server has no shell"
        } else {
            "is not available here"
        };
        assert!(text.contains(expected), "{command:?}: {text}");
    }

    // The owner still can.
    let (ok, output) = setup.push(work, owner_key, &app).await;
    assert!(ok, "{output}");
    eventually(Duration::from_secs(5), "the app to answer", || async {
        match setup.get_app(&app).await {
            (200, body) if body == "x\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_registry_images_are_pushed_there_and_pushes_over_the_limit_are_refused() {
    let registry = deis_testkit::Registry::start().await;
    let mut host = SingleHost::new(Options {
        max_push_bytes: Some(64 * 1024),
        ..Options::default()
    })
    .await;
    // The operator's `registry_upstream` (`--registry-upstream`): the platform's registry proxy
    // fronts the registry and the builder pushes through the proxy.
    let file = host.dir().join("platform.toml");
    let text = std::fs::read_to_string(&file).expect("the configuration file");
    let upstream = format!("http://{}", registry.addr());
    std::fs::write(&file, format!("registry_upstream = \"{upstream}\"\n{text}"))
        .expect("the configuration file");
    host.process = Some(host.run());
    host.wait_until_up().await;
    let banner = host
        .process
        .as_ref()
        .map(|p| p.output())
        .unwrap_or_default();
    let proxy = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("registry:    images pushed through "))
        .and_then(|l| l.strip_suffix(&format!(" to {upstream}")))
        .unwrap_or_else(|| panic!("the banner names the registry proxy: {banner}"))
        .to_owned();
    let (a, b) = (app_name("reg-a"), app_name("reg-b"));
    let dockerfile = serving_dockerfile(&host.image, "from-the-registry");
    let Pusher { token, key, work } = pusher(&host, "dev", &a, &dockerfile).await;
    host.create_app(&token, &b).await;

    // Two apps pushed at once both deploy (pushes to different apps run in parallel), their
    // images pushed through the proxy with a line per layer and the digest.
    let (first, second) = tokio::join!(host.push(&work, &key, &a), host.push(&work, &key, &b));
    let mut tags = Vec::new();
    for (app, (ok, output)) in [(&a, first), (&b, second)] {
        assert!(ok, "{output}");
        let progress: Vec<&str> = output
            .lines()
            .skip_while(|l| !l.contains(&format!("-----> Pushing image to {proxy}")))
            .skip(1)
            .take_while(|l| !l.contains("-----> Launching"))
            .collect();
        assert!(
            (2..10).contains(&progress.len()) && progress.iter().all(|l| l.contains("       ")),
            "a few indented lines of progress:\n{output}"
        );
        let tag = progress
            .iter()
            .find_map(|l| {
                l.split_once(": digest: sha256:")?
                    .0
                    .split_whitespace()
                    .last()
            })
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("the pushed image's digest:\n{output}"));
        assert_eq!(
            host.get_app(app).await,
            (200, "from-the-registry\n".to_owned())
        );
        let (status, listed) = http(
            registry.addr(),
            "GET",
            "registry",
            &format!("/v2/{app}/tags/list"),
            None,
            "",
        )
        .await;
        assert_eq!(status, 200, "the registry has {app}: {listed}");
        assert!(listed.contains(&format!("\"{tag}\"")), "{listed}");
        tags.push(tag);
    }

    // With no container left and the image gone from the engine, scaling up pulls it back
    // through the proxy.
    let image = format!("{proxy}/{a}:{}", tags[0]);
    let on_engine = || !docker_lines(&["images", "-q", &image]).is_empty();
    assert!(on_engine(), "{image} is on the engine that built it");
    let scale = |n: u32| {
        let path = format!("/v1/apps/{a}/scale/");
        let (host, token) = (&host, &token);
        async move {
            let body = format!(r#"{{"cmd": {n}}}"#);
            let (status, text) = host.api("POST", &path, Some(token), &body).await;
            assert_eq!(status, 204, "scale cmd={n}: {text}");
        }
    };
    scale(0).await;
    docker_lines(&["rmi", "-f", &image]);
    assert!(!on_engine(), "{image} is still on the engine");
    scale(1).await;
    assert!(on_engine(), "{image} is pulled back through the proxy");
    assert_eq!(
        host.get_app(&a).await,
        (200, "from-the-registry\n".to_owned())
    );

    // A push over max_push_bytes is stopped with the reason, and nothing changes.
    let mut random = vec![0u8; 100_000];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("urandom"),
        &mut random,
    )
    .expect("random bytes");
    let noise: String = random.iter().map(|b| format!("{b:02x}")).collect();
    commit(&work, &[("big.txt", &noise)], "big");
    let (ok, output) = host.push(&work, &key, &a).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("the push is larger than the limit of 65536 bytes"),
        "{output}"
    );
    assert_eq!(
        host.get_app(&a).await,
        (200, "from-the-registry\n".to_owned())
    );
}

/// Starts `git push` of `work`'s master to `app` and returns once the builder says it is
/// building, with the rest of the push: whether it succeeded, and everything git printed.
async fn push_until_building(
    setup: &impl Setup,
    work: &Path,
    key: &SshKey,
    app: &str,
) -> impl Future<Output = (bool, String)> {
    let mut push = setup
        .push_command(work, key, app)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git push runs");
    let mut lines = BufReader::new(push.stderr.take().expect("stderr")).lines();
    let mut said = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
            if line.contains("-----> Building Docker image") {
                return;
            }
        }
        panic!("the push ended before building: {said}");
    })
    .await
    .expect("the push to be building within 20 s");
    async move {
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
        }
        let output = push.wait_with_output().await.expect("git push runs");
        said.push_str(&String::from_utf8_lossy(&output.stdout));
        (output.status.success(), said)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_to_one_app_wait_their_turn_clones_work_and_slow_builds_time_out() {
    // Long enough for a build of a few seconds and its deploy on a loaded machine.
    let host = SingleHost::start_with(Options {
        build_timeout: Some(15),
        ..Options::default()
    })
    .await;
    let app = app_name("turns");
    let slow = format!("FROM {}\nRUN sleep 3\nCMD {}\n", host.image, serve("slow"));
    let Pusher { key, work, .. } = pusher(&host, "dev", &app, &slow).await;

    // While one push builds, a second push to the app waits for it.
    let first = push_until_building(&host, &work, &key, &app).await;
    let (first, second) = tokio::join!(first, host.push(&work, &key, &app));
    assert!(first.0, "{}", first.1);
    assert!(second.0, "{}", second.1);
    assert!(
        second.1.contains(&format!(
            "Another push to {app} is being built; waiting for it"
        )),
        "{}",
        second.1
    );
    assert_eq!(host.get_app(&app).await, (200, "slow\n".to_owned()));

    // The app's repository can be cloned back by its owner.
    let clone = host.dir().join("clone");
    let output = tokio::process::Command::new("git")
        .args(["clone", "--quiet", &host.remote(&app)])
        .arg(&clone)
        .env("GIT_SSH_COMMAND", key.ssh_command())
        .output()
        .await
        .expect("git clone runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("Dockerfile")).expect("cloned Dockerfile"),
        slow
    );

    // A build longer than the timeout fails the push and changes nothing.
    commit(
        &work,
        &[(
            "Dockerfile",
            &format!("FROM {}\nRUN sleep 30\n", host.image),
        )],
        "too slow",
    );
    let (ok, output) = host.push(&work, &key, &app).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("the build took longer than 15 s"),
        "{output}"
    );
    assert_eq!(host.get_app(&app).await, (200, "slow\n".to_owned()));
}
