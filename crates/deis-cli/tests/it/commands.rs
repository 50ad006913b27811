//! Every command of the built `deis` binary against a real controller, checking what it prints
//! and its exit status, as the Deis v1.13 client prints them.

use crate::support::{Controller, User};

fn git(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(status.status.success(), "git {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_day_with_the_client() {
    let c = Controller::start().await;
    let dev = User::new("shop");
    git(&dev.cwd, &["init", "--quiet"]);

    // register -> logged in, settings saved.
    let out = dev.register(&c.url, "dev").await;
    assert_eq!(out, "Registered dev\nLogged in as dev\n");
    let settings = dev.settings();
    assert_eq!(settings["username"], "dev");
    assert_eq!(settings["controller"], c.url.as_str());
    assert!(!settings["token"].as_str().unwrap_or_default().is_empty());
    assert_eq!(
        dev.ok(&["whoami"]).await,
        format!("You are dev at {}\n", c.url)
    );

    // create: the app and its git remote.
    let out = dev.ok(&["create", "shop"]).await;
    assert!(
        out.starts_with("Creating Application... done, created shop\nGit remote deis added\n"),
        "{out}"
    );
    assert!(
        out.contains("remote available at ssh://git@127.0.0.1:2222/shop.git"),
        "{out}"
    );
    assert_eq!(dev.ok(&["apps"]).await, "=== Apps\nshop\n");
    assert_eq!(dev.ok(&["apps:list"]).await, "=== Apps\nshop\n");

    // config: the app comes from the git remote.
    let out = dev
        .ok(&["config:set", "GREETING=hello", "MODE=a b", "bad-arg"])
        .await;
    assert_eq!(
        out,
        "'bad-arg' does not match the pattern 'key=var', ex: MODE=test\nCreating config... done, v2\n\n=== shop Config\nGREETING      hello\nMODE          a b\n"
    );
    assert_eq!(
        dev.ok(&["config", "--oneline"]).await,
        "GREETING=hello MODE=a b \n"
    );
    let out = dev.ok(&["config:unset", "MODE"]).await;
    assert!(
        out.starts_with("Removing config... done, v3\n\n=== shop Config\nGREETING"),
        "{out}"
    );

    // releases, info, rollback.
    let out = dev.ok(&["releases"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "=== shop Releases");
    assert!(lines[1].starts_with("v3  "), "{out}");
    assert!(
        lines[3].starts_with("v1  ") && lines[3].ends_with("dev created initial release"),
        "{out}"
    );
    let out = dev.ok(&["releases:info", "v2"]).await;
    assert!(out.starts_with("=== shop Release v2\n"), "{out}");
    assert!(out.contains("owner:    dev\n"), "{out}");
    assert_eq!(
        dev.ok(&["rollback", "v2"]).await,
        "Rolling back to v2... done, v4\n"
    );
    assert_eq!(
        dev.ok(&["rollback"]).await,
        "Rolling back one release... done, v5\n"
    );
    assert_eq!(
        dev.ok(&["config", "-a", "shop", "--oneline"]).await,
        "GREETING=hello \n"
    );

    // limits.
    let out = dev.ok(&["limits:set", "web=512M"]).await;
    assert_eq!(
        out,
        "Applying limits... done, v6\n\n=== shop Limits\n\n--- Memory\nweb      512M\n\n--- CPU\nUnlimited\n"
    );
    let out = dev.ok(&["limits:unset", "web"]).await;
    assert!(
        out.ends_with("--- Memory\nUnlimited\n\n--- CPU\nUnlimited\n"),
        "{out}"
    );

    // domains.
    assert_eq!(
        dev.ok(&["domains:add", "shop.example.org"]).await,
        "Adding shop.example.org to shop... done\n"
    );
    assert_eq!(
        dev.ok(&["domains"]).await,
        "=== shop Domains\nshop.example.org\n"
    );
    assert_eq!(
        dev.ok(&["domains:remove", "shop.example.org"]).await,
        "Removing shop.example.org from shop... done\n"
    );

    // pull, builds, ps, scale.
    std::fs::write(
        dev.cwd.join("Procfile"),
        "web: httpd -f -p $PORT\nworker: sleep 1000\n",
    )
    .expect("Procfile");
    assert_eq!(
        dev.ok(&["pull", "example/shop:1"]).await,
        "Creating build... done\n"
    );
    let out = dev.ok(&["builds"]).await;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("=== shop Builds\n"), "{out}");
    let out = dev.ok(&["ps"]).await;
    // A pulled image (no git sha) starts as `cmd`, as in Deis.
    assert!(
        out.starts_with("=== shop Processes\n--- cmd:\ncmd.1 "),
        "{out}"
    );
    let out = dev.ok(&["scale", "cmd=0", "web=2", "worker=1"]).await;
    assert!(
        out.starts_with("Scaling processes... but first, coffee!\ndone in "),
        "{out}"
    );
    assert!(
        out.contains("--- web:\nweb.1 ") && out.contains("\nweb.2 "),
        "{out}"
    );
    assert!(out.contains("--- worker:\nworker.1 "), "{out}");
    // On a terminal a spinner turns while the controller works; in a pipe there is none.
    let script = deis_testkit::require("script", "util-linux");
    let line = format!(
        "HOME={} {} scale web=2 -a shop",
        dev.home.path().display(),
        env!("CARGO_BIN_EXE_deis")
    );
    let on_tty = tokio::process::Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .current_dir(&dev.cwd)
        .output()
        .await
        .expect("script runs");
    let text = String::from_utf8_lossy(&on_tty.stdout);
    assert!(
        text.contains("...\u{8}\u{8}\u{8}"),
        "a spinner on a terminal: {text:?}"
    );
    assert!(!out.contains('\u{8}'), "no spinner in a pipe");
    let err = dev.fails(&["scale", "web"]).await;
    assert!(
        err.contains("'web' does not match the pattern 'type=num'"),
        "{err}"
    );

    // keys.
    let key = dev.home.path().join("laptop.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq4EmtTuGUNR5x1m0iBSZNWzsO6Ok0uEMNxdFpy8Nb3 dev@laptop\n",
    )
    .expect("key");
    assert_eq!(
        dev.ok(&["keys:add", &key.display().to_string()]).await,
        "Uploading laptop.pub to deis... done\n"
    );
    assert_eq!(
        dev.ok(&["keys"]).await,
        "=== dev Keys\ndev@laptop ssh-ed25519 AAAA...dev@laptop\n"
    );
    assert_eq!(
        dev.ok(&["keys:remove", "dev@laptop"]).await,
        "Removing dev@laptop SSH Key... done\n"
    );

    // perms and users, with a second user.
    let bob = User::new("elsewhere");
    bob.register(&c.url, "bob").await;
    let err = bob.fails(&["info", "-a", "shop"]).await;
    assert!(err.starts_with("Error: \n403 FORBIDDEN\n"), "{err}");
    assert_eq!(
        dev.ok(&["perms:create", "bob"]).await,
        "Adding bob to shop collaborators... done\n"
    );
    assert_eq!(dev.ok(&["perms"]).await, "=== shop's Users\nbob\n");
    assert_eq!(
        dev.ok(&["perms", "--admin"]).await,
        "=== Administrators\ndev\n"
    );
    assert!(
        bob.ok(&["info", "-a", "shop"])
            .await
            .starts_with("=== shop Application\n")
    );
    assert_eq!(
        dev.ok(&["sharing:remove", "bob"]).await,
        "Removing bob from shop collaborators... done\n"
    );
    assert_eq!(dev.ok(&["users"]).await, "=== Users\nbob\ndev\n");

    // info and logs.
    let out = dev.ok(&["info"]).await;
    assert!(out.starts_with("=== shop Application\nupdated:  "), "{out}");
    assert!(out.contains("\nurl:      shop.example.com\n"), "{out}");
    assert!(
        out.contains("\n=== shop Processes\n") && out.contains("\n=== shop Domains\n"),
        "{out}"
    );
    assert_eq!(dev.ok(&["logs"]).await, "No logs for shop yet.\n");
    let err = dev.fails(&["logs", "-f"]).await;
    assert!(
        err.contains("503 SERVICE UNAVAILABLE\ndetail: No logger is running"),
        "{err}"
    );

    // destroy: the app and its remote go.
    let out = dev.ok(&["destroy", "--confirm", "shop"]).await;
    assert!(out.starts_with("Destroying shop...\ndone in "), "{out}");
    assert!(out.ends_with("Git remote deis removed\n"), "{out}");
    assert_eq!(dev.ok(&["apps"]).await, "=== Apps\n");

    // logout: nothing works until the next login.
    assert_eq!(dev.ok(&["logout"]).await, "Logged out\n");
    assert_eq!(
        dev.fails(&["apps"]).await,
        "Error: Not logged in. Use 'deis login' or 'deis register' to get started.\n"
    );
    assert_eq!(
        dev.ok(&["login", &c.url, "--username", "dev", "--password", "pw"])
            .await,
        "Logged in as dev\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_what_went_wrong_and_exit_1() {
    let c = Controller::start().await;
    let dev = User::new("work");
    dev.register(&c.url, "dev").await;

    let err = dev
        .fails(&["login", &c.url, "--username", "dev", "--password", "wrong"])
        .await;
    assert!(err.starts_with("Error: \n400 BAD REQUEST\n"), "{err}");
    let err = dev.fails(&["info", "-a", "nope"]).await;
    assert!(err.starts_with("Error: \n404 NOT FOUND\n"), "{err}");
    assert!(err.contains("Not found"), "{err}");
    let err = dev
        .fails(&[
            "login",
            "http://127.0.0.1:1",
            "--username",
            "dev",
            "--password",
            "pw",
        ])
        .await;
    assert!(err.contains("cannot be reached"), "{err}");
    let err = dev
        .fails(&["destroy", "-a", "work", "--confirm", "other"])
        .await;
    assert_eq!(
        err,
        "Error: App work does not match confirm other, aborting.\n"
    );
    let ran = dev.deis(&["frobnicate"]).await;
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("Found no matching command, try 'deis help'"),
        "{ran:?}"
    );
    assert_eq!(dev.ok(&["version"]).await, "1.13.4\n");

    // The app defaults to the directory's name when no git remote points at the controller.
    let err = dev.fails(&["config"]).await;
    assert!(
        err.contains("404 NOT FOUND"),
        "looked up the app 'work': {err}"
    );
    dev.ok(&["create", "work", "--no-remote"]).await;
    assert_eq!(dev.ok(&["config"]).await, "=== work Config\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_tokens_accounts_dotenv_json_help_completions_and_plugins() {
    let c = Controller::start().await;
    let dev = User::new("site");
    dev.register(&c.url, "dev").await;
    dev.ok(&["create", "site", "--no-remote"]).await;

    // certs.
    assert_eq!(dev.ok(&["certs"]).await, "No certs\n");
    let cert =
        rcgen::generate_simple_self_signed(vec!["site.example.org".to_owned()]).expect("cert");
    let (cert_path, key_path) = (
        dev.home.path().join("site.crt"),
        dev.home.path().join("site.key"),
    );
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert file");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("key file");
    assert_eq!(
        dev.ok(&[
            "certs:add",
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
            "--common-name",
            "site.example.org",
        ])
        .await,
        "Adding SSL endpoint... done\n"
    );
    let out = dev.ok(&["certs"]).await;
    assert!(
        out.starts_with("Common Name       Expires\n----------------  "),
        "{out}"
    );
    assert!(out.contains("\nsite.example.org  "), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&dev.ok(&["certs", "--json"]).await).expect("json");
    assert_eq!(json[0]["common_name"], "site.example.org");
    assert_eq!(
        dev.ok(&["certs:remove", "site.example.org"]).await,
        "Removing site.example.org... done\n"
    );

    // --json for scripts.
    let apps: serde_json::Value =
        serde_json::from_str(&dev.ok(&["apps", "--json"]).await).expect("json");
    assert_eq!(apps[0]["id"], "site");
    dev.ok(&["config:set", "-a", "site", "A=1"]).await;
    let config: serde_json::Value =
        serde_json::from_str(&dev.ok(&["config", "-a", "site", "--json"]).await).expect("json");
    assert_eq!(config["A"], "1");

    // config:pull writes .env, refuses to overwrite it, and config:push sends it back.
    assert_eq!(dev.ok(&["config:pull", "-a", "site"]).await, "");
    assert_eq!(
        std::fs::read_to_string(dev.cwd.join(".env")).expect(".env"),
        "A=1\n"
    );
    let err = dev.fails(&["config:pull", "-a", "site"]).await;
    assert_eq!(err, "Error: .env already exists, pass -o to overwrite\n");
    std::fs::write(dev.cwd.join(".env"), "A=2\nB=three words\n").expect(".env");
    let out = dev.ok(&["config:push", "-a", "site"]).await;
    assert!(out.starts_with("Creating config... done, v3\n"), "{out}");
    assert_eq!(
        dev.ok(&["config", "-a", "site", "--oneline"]).await,
        "A=2 B=three words \n"
    );

    // tags.
    let out = dev.ok(&["tags:set", "-a", "site", "environ=prod"]).await;
    assert!(out.ends_with("=== site Tags\nenviron      prod\n"), "{out}");
    assert_eq!(
        dev.ok(&["tags", "-a", "site"]).await,
        "=== site Tags\nenviron      prod\n"
    );
    let out = dev.ok(&["tags:unset", "-a", "site", "environ"]).await;
    assert!(out.ends_with("=== site Tags\n"), "{out}");

    // git:remote in a repository.
    git(&dev.cwd, &["init", "--quiet"]);
    let out = dev.ok(&["git:remote", "-a", "site"]).await;
    assert_eq!(out, "Git remote deis added\n");
    let err = dev.fails(&["git:remote", "-a", "site"]).await;
    assert!(err.contains("git remote rename deis deis.old"), "{err}");

    // passwd: the new password logs in, the old one no longer does.
    assert_eq!(
        dev.ok(&["passwd", "--password", "pw", "--new-password", "better"])
            .await,
        "Password change succeeded.\n"
    );
    dev.fails(&["login", &c.url, "--username", "dev", "--password", "pw"])
        .await;
    dev.ok(&["login", &c.url, "--username", "dev", "--password", "better"])
        .await;
    let err = dev
        .fails(&["passwd", "--password", "wrong", "--new-password", "x"])
        .await;
    assert!(
        err.starts_with("Password change failed: Error: \n400 BAD REQUEST"),
        "{err}"
    );

    // transfer to another user.
    let bob = User::new("bob");
    bob.register(&c.url, "bob").await;
    assert_eq!(
        dev.ok(&["apps:transfer", "bob", "-a", "site"]).await,
        "Transferring site to bob... done\n"
    );
    assert!(
        bob.ok(&["info", "-a", "site"])
            .await
            .contains("owner:    bob\n")
    );

    // regenerate: the old token stops working, the saved one is the new one.
    let old = dev.settings()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(dev.ok(&["auth:regenerate"]).await, "Token Regenerated\n");
    assert_ne!(dev.settings()["token"].as_str().unwrap_or_default(), old);
    assert!(dev.ok(&["apps"]).await.starts_with("=== Apps"));

    // An administrator cancels bob's account once bob owns nothing.
    bob.ok(&["destroy", "-a", "site", "--confirm", "site"])
        .await;
    assert_eq!(
        dev.ok(&["auth:cancel", "--username", "bob", "--yes"]).await,
        "Account cancelled\n"
    );
    assert_eq!(dev.ok(&["users"]).await, "=== Users\ndev\n");

    // help, completions, plugins, profiles.
    let help = dev.ok(&["help", "apps:create"]).await;
    assert!(
        help.contains("Creates an app") && help.contains("--no-remote"),
        "{help}"
    );
    let script = dev.ok(&["completions", "bash"]).await;
    assert!(
        script.contains("config:set"),
        "the completion knows the commands"
    );
    let bin = dev.home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let plugin = bin.join("deis-hello");
    std::fs::write(&plugin, "#!/bin/sh\necho \"plugin got: $*\"\n").expect("plugin");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = dev
        .deis_env(&dev.cwd, &["hello:world", "x"], &[("PATH", &path)])
        .await;
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (0, "plugin got: world x\n"),
        "{ran:?}"
    );
    // open hands the app's URL to the desktop's opener.
    let opener = bin.join("xdg-open");
    let opened = dev.home.path().join("opened");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .expect("opener");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dev.ok(&["create", "viewer", "--no-remote"]).await;
    let ran = dev
        .deis_env(&dev.cwd, &["open", "-a", "viewer"], &[("PATH", &path)])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        std::fs::read_to_string(&opened).expect("the opener ran"),
        "http://viewer.example.com\n"
    );
    let other = dev
        .deis_env(&dev.cwd, &["whoami"], &[("DEIS_PROFILE", "other")])
        .await;
    assert_eq!(other.code, 1, "another profile is not logged in: {other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_restart_with_real_containers() {
    let docker = deis_testkit::TestDocker::connect().await;
    let base = docker.base_image().await;
    // A pulled image runs its own CMD (the `cmd` process type, as in Deis): one that serves.
    let image = format!("{base}-web");
    let dockerfile = format!(
        "FROM {base}\nCMD mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w\n"
    );
    docker.build_image(&image, &dockerfile).await;
    let c = Controller::start_with(deis_controller::SchedulerKind::Docker, docker.labels()).await;
    let dev = User::new("runner");
    dev.register(&c.url, "dev").await;
    dev.ok(&["create", "runner", "--no-remote"]).await;
    assert_eq!(dev.ok(&["pull", &image]).await, "Creating build... done\n");

    // run: the command's output, and its exit status as the client's.
    let ran = dev
        .deis(&["run", "--", "echo", "hello", "from", "$DEIS_APP"])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(
        ran.stdout,
        "Running 'echo hello from $DEIS_APP'...\nhello from runner\n"
    );
    let ran = dev.deis(&["run", "exit 3"]).await;
    assert_eq!(ran.code, 3, "{ran:?}");

    // ps:restart of a type.
    let out = dev.ok(&["ps:restart", "cmd"]).await;
    assert!(
        out.starts_with("Restarting processes... but first, coffee!\ndone in "),
        "{out}"
    );
    assert!(out.contains("--- cmd:\ncmd.1 up (v2)"), "{out}");
    docker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_logs_follow_with_a_logger() {
    use tokio::io::AsyncBufReadExt;
    let c = Controller::start().await;
    c.start_logger().await;
    let dev = User::new("tail");
    dev.register(&c.url, "dev").await;
    dev.ok(&["create", "tail", "--no-remote"]).await;
    let out = deis_testkit::eventually(
        std::time::Duration::from_secs(10),
        "the creation in the log",
        || async {
            let ran = dev.deis(&["logs", "-a", "tail"]).await;
            if ran
                .stdout
                .contains("tail[deis-controller]: dev created initial release")
            {
                Ok(ran.stdout)
            } else {
                Err(format!("{ran:?}"))
            }
        },
    )
    .await;
    assert!(out.lines().all(|l| l.contains("UTC tail[")), "{out}");

    // deis logs -f: the process keeps printing lines as they happen.
    let mut follow = tokio::process::Command::new(env!("CARGO_BIN_EXE_deis"))
        .args(["logs", "-f", "-n", "1", "-a", "tail"])
        .env("HOME", dev.home.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("deis logs -f starts");
    let mut lines = tokio::io::BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let first = lines
        .next_line()
        .await
        .expect("read")
        .expect("the last line");
    assert!(first.contains("tail[deis-controller]"), "{first}");
    dev.ok(&["config:set", "-a", "tail", "MODE=live"]).await;
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .expect("a new line arrives")
        .expect("read")
        .expect("a line");
    assert!(
        next.ends_with("tail[deis-controller]: dev added MODE"),
        "{next}"
    );
    follow.kill().await.expect("stop following");
}
