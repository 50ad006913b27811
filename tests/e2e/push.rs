//! `git push` over SSH to the builder: Dockerfile and buildpack apps built, deployed and
//! answering; a broken build failing the push while the previous release keeps serving; and the
//! refusals (unknown key, someone else's app, a shell).

use std::time::Duration;

use deis_testkit::{eventually, unique_id};

use crate::support::{Platform, User, commit, work_tree};

fn dockerfile(image: &str, greeting: &str) -> String {
    format!(
        "FROM {image}\nCMD mkdir -p /tmp/www && echo {greeting} > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_app_is_built_deployed_and_a_broken_build_changes_nothing() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let app = format!("docker-{}", unique_id());
    p.create_app(&token, &app).await;
    let work = work_tree(
        &p.dir.path().join("work"),
        &[("Dockerfile", &dockerfile(&p.image, "hello-from-git"))],
    );

    let (ok, output) = p.push(&work, &key, &app).await;
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
        p.get_app(&app).await,
        (200, "hello-from-git\n".to_owned()),
        "the new release serves as soon as the push returns"
    );

    // A broken Dockerfile fails the push with Docker's error; v2 keeps serving.
    commit(
        &work,
        &[(
            "Dockerfile",
            &format!("FROM {}\nRUN no-such-command\n", p.image),
        )],
        "broken",
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(!ok, "the push fails:\n{output}");
    assert!(
        output.contains("no-such-command"),
        "Docker's error is shown:\n{output}"
    );
    assert!(output.contains("Push rejected"), "{output}");
    assert!(output.contains("pre-receive hook declined"), "{output}");
    assert_eq!(p.get_app(&app).await, (200, "hello-from-git\n".to_owned()));

    // An image that builds but never serves fails the push at the deploy; v2 keeps serving.
    commit(
        &work,
        &[("Dockerfile", &format!("FROM {}\nCMD exit 3\n", p.image))],
        "crashes",
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(!ok, "the push fails:\n{output}");
    assert!(
        output.contains("the release could not be deployed"),
        "the reason is shown:\n{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "hello-from-git\n".to_owned()));

    // Fixing it deploys v3.
    commit(
        &work,
        &[("Dockerfile", &dockerfile(&p.image, "fixed"))],
        "fixed",
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "fixed\n".to_owned()));
}

/// A buildpack written in shell: detects `index.html`, serves it with busybox httpd, and keeps
/// a counter in its cache directory.
const DETECT: &str = "#!/bin/sh\n[ -f \"$1/index.html\" ] && echo Static\n";
const COMPILE: &str = "#!/bin/sh\nset -e\nbuild=$1 cache=$2 env=$3\nif [ -f \"$cache/builds\" ]; then echo \"cache: reused after $(cat \"$cache/builds\") build(s)\"; else echo 'cache: empty'; fi\necho $(( $(cat \"$cache/builds\" 2>/dev/null || echo 0) + 1 )) > \"$cache/builds\"\necho \"greeting from env dir: $(cat \"$env/GREETING\")\"\nmkdir -p \"$build/public\"\ncp \"$build/index.html\" \"$build/public/index.html\"\necho '-----> Static site ready'\n";
const RELEASE: &str = "#!/bin/sh\ncat <<EOF\n---\ndefault_process_types:\n  web: httpd -f -p \\$PORT -h /app/public\nEOF\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buildpack_app_is_built_with_a_custom_buildpack_and_its_cache_is_kept() {
    let p = Platform::start().await;
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let app = format!("static-{}", unique_id());
    p.create_app(&token, &app).await;
    let buildpack = work_tree(
        &p.dir.path().join("buildpack"),
        &[
            ("bin/detect", DETECT),
            ("bin/compile", COMPILE),
            ("bin/release", RELEASE),
        ],
    );
    let config = serde_json::json!({"values": {
        "BUILDPACK_URL": format!("file://{}", buildpack.display()),
        "GREETING": "hello",
    }})
    .to_string();
    let (status, body) = p
        .api(
            "POST",
            &format!("/v1/apps/{app}/config/"),
            Some(&token),
            &config,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let work = work_tree(
        &p.dir.path().join("site"),
        &[("index.html", "<h1>v1</h1>\n")],
    );

    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("-----> Fetching custom buildpack"),
        "{output}"
    );
    assert!(output.contains("-----> Static app detected"), "{output}");
    assert!(output.contains("cache: empty"), "{output}");
    assert!(output.contains("greeting from env dir: hello"), "{output}");
    assert!(output.contains("-----> Process types -> web"), "{output}");
    assert!(
        output.contains(&format!("done, {app}:v3 deployed")),
        "{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "<h1>v1</h1>\n".to_owned()));

    commit(&work, &[("index.html", "<h1>v2</h1>\n")], "second");
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(ok, "{output}");
    assert!(
        output.contains("cache: reused after 1 build(s)"),
        "{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "<h1>v2</h1>\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_keys_and_shells_are_refused_with_their_reasons() {
    let p = Platform::start().await;
    let owner = p.user("owner").await;
    let owner_key = p.add_key(&owner, "owner").await;
    let stranger = p.user("stranger").await;
    let stranger_key = p.add_key(&stranger, "stranger").await;
    let app = format!("private-{}", unique_id());
    p.create_app(&owner, &app).await;
    let work = work_tree(
        &p.dir.path().join("work"),
        &[("Dockerfile", &dockerfile(&p.image, "x"))],
    );

    // Someone else's app.
    let (ok, output) = p.push(&work, &stranger_key, &app).await;
    assert!(!ok);
    assert!(output.contains(&format!("{app}: push denied")), "{output}");

    // A key nobody registered.
    let unknown = crate::support::SshKey::generate(p.dir.path(), "unknown");
    let (ok, output) = p.push(&work, &unknown, &app).await;
    assert!(!ok);
    assert!(
        output.contains("belongs to no user: add it with `deis keys:add`"),
        "{output}"
    );

    // A shell, and an arbitrary command.
    for command in [None, Some("cat /etc/passwd")] {
        let mut ssh = tokio::process::Command::new("sh");
        let line = format!(
            "{} -T -p {} git@{} {}",
            owner_key.ssh_command(),
            p.ssh.port(),
            p.ssh.ip(),
            command.unwrap_or("")
        );
        ssh.arg("-c").arg(line).stdin(std::process::Stdio::null());
        let output = ssh.output().await.expect("ssh runs");
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
    let (ok, output) = p.push(&work, &owner_key, &app).await;
    assert!(ok, "{output}");
    eventually(Duration::from_secs(5), "the app to answer", || async {
        match p.get_app(&app).await {
            (200, body) if body == "x\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_registry_images_are_pushed_there_and_pushes_over_the_limit_are_refused() {
    let registry = deis_testkit::Registry::start().await;
    let p = Platform::start_with(|config| {
        config.builder.registry = Some(registry.addr().to_string());
        config.builder.max_push_bytes = 64 * 1024;
    })
    .await;
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let (a, b) = (
        format!("reg-a-{}", unique_id()),
        format!("reg-b-{}", unique_id()),
    );
    p.create_app(&token, &a).await;
    p.create_app(&token, &b).await;
    let work = work_tree(
        &p.dir.path().join("work"),
        &[("Dockerfile", &dockerfile(&p.image, "from-the-registry"))],
    );

    // Two apps pushed at once both deploy (pushes to different apps run in parallel).
    let (first, second) = tokio::join!(p.push(&work, &key, &a), p.push(&work, &key, &b));
    for (app, (ok, output)) in [(&a, first), (&b, second)] {
        assert!(ok, "{output}");
        assert!(
            output.contains(&format!("-----> Pushing image to {}", registry.addr())),
            "{output}"
        );
        assert_eq!(
            p.get_app(app).await,
            (200, "from-the-registry\n".to_owned())
        );
        let (status, tags) = crate::support::http(
            registry.addr(),
            "GET",
            "registry",
            &format!("/v2/{app}/tags/list"),
            None,
            "",
        )
        .await;
        assert_eq!(status, 200, "the registry has {app}: {tags}");
        assert!(tags.contains("git-"), "{tags}");
    }

    // A push over max_push_bytes is stopped with the reason, and nothing changes.
    let mut random = vec![0u8; 100_000];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("urandom"),
        &mut random,
    )
    .expect("random bytes");
    let noise: String = random.iter().map(|b| format!("{b:02x}")).collect();
    commit(&work, &[("big.txt", &noise)], "big");
    let (ok, output) = p.push(&work, &key, &a).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("the push is larger than the limit of 65536 bytes"),
        "{output}"
    );
    assert_eq!(p.get_app(&a).await, (200, "from-the-registry\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_one_app_wait_their_turn_clones_work_and_slow_builds_time_out() {
    let p = Platform::start_with(|config| {
        config.builder.build_timeout = Duration::from_secs(8);
    })
    .await;
    let token = p.user("dev").await;
    let key = p.add_key(&token, "laptop").await;
    let app = format!("turns-{}", unique_id());
    p.create_app(&token, &app).await;
    let slow = format!(
        "FROM {image}\nRUN sleep 3\nCMD mkdir -p /tmp/www && echo slow > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www\n",
        image = p.image
    );
    let work = work_tree(&p.dir.path().join("work"), &[("Dockerfile", &slow)]);

    // While one push builds (its scratch directory exists), a second push to the app waits.
    let pushes = p.dir.path().join("builder").join("pushes");
    let (first, second) = tokio::join!(p.push(&work, &key, &app), async {
        eventually(
            Duration::from_secs(20),
            "the first push to be building",
            || async {
                match std::fs::read_dir(&pushes).map(|d| d.count()) {
                    Ok(n) if n > 0 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        p.push(&work, &key, &app).await
    });
    assert!(first.0, "{}", first.1);
    assert!(second.0, "{}", second.1);
    assert!(
        second.1.contains(&format!(
            "Another push to {app} is being built; waiting for it"
        )),
        "{}",
        second.1
    );
    assert_eq!(p.get_app(&app).await, (200, "slow\n".to_owned()));

    // The app's repository can be cloned back by its owner.
    let clone = p.dir.path().join("clone");
    let remote = format!("ssh://git@{}:{}/{app}.git", p.ssh.ip(), p.ssh.port());
    let output = tokio::process::Command::new("git")
        .args(["clone", "--quiet", &remote])
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
        &[("Dockerfile", &format!("FROM {}\nRUN sleep 30\n", p.image))],
        "too slow",
    );
    let (ok, output) = p.push(&work, &key, &app).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("the build took longer than 8 s"),
        "{output}"
    );
    assert_eq!(p.get_app(&app).await, (200, "slow\n".to_owned()));
}
