//! What deisctl refuses about reaching a cluster, before it touches anything: a tunnel without
//! a scheduler that uses it, a malformed tunnel, and a host whose key it does not know.

const BIN: &str = env!("CARGO_BIN_EXE_deisctl");

fn deisctl(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .env_remove("DEISCTL_TUNNEL")
        .env_remove("DEISCTL_SCHEDULER")
        .env_remove("SSH_AUTH_SOCK");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("deisctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tunnel_needs_a_scheduler_that_uses_it() {
    let (code, err) = deisctl(&[("DEISCTL_TUNNEL", "core@127.0.0.1")], &["list"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("DEISCTL_SCHEDULER=swarm"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn a_malformed_tunnel_is_refused_with_its_form() {
    let (code, err) = deisctl(
        &[
            ("DEISCTL_TUNNEL", "core@host:notaport"),
            ("DEISCTL_SCHEDULER", "swarm"),
        ],
        &["list"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("[user@]host[:port]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_before_anything_is_done() {
    let sshd = deis_testkit::Sshd::start().await;
    let home = tempfile::tempdir().expect("home");
    let tunnel = format!("{}@{}", sshd.user(), sshd.addr());
    let key = sshd.client_key().display().to_string();
    let (code, err) = deisctl(
        &[
            ("HOME", &home.path().display().to_string()),
            ("DEISCTL_TUNNEL", &tunnel),
            ("DEISCTL_SCHEDULER", "swarm"),
            ("DEISCTL_SSH_KEY", &key),
        ],
        &["install", "platform"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ssh-keyscan"), "says what to do: {err}");
}
