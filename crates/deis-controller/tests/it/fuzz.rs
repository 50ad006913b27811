//! schemathesis against `/v1/openapi.json`: every operation, with generated valid and invalid
//! input (and stateful sequences), as a fresh user and as an administrator, on both databases:
//! no answer is a 5xx, none hangs, the controller keeps serving.

use std::path::PathBuf;

use crate::support::Controller;

on_both_databases!(no_generated_request_gets_a_server_error);

/// The schemathesis command: `target/tools/schemathesis` (made by tools/install-deps), else
/// `$PATH`. Fails with the command that installs it.
fn schemathesis() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/tools/schemathesis/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("schemathesis"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "schemathesis is missing; install it with tools/install-deps (python3 -m venv target/tools/schemathesis && target/tools/schemathesis/bin/pip install schemathesis)"
        )
    })
}

async fn no_generated_request_gets_a_server_error(c: Controller) {
    let program = schemathesis();
    let admin = c.user("admin").await;
    let fresh = c.user("fresh").await;
    c.app(&fresh, "fuzz").await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // Path parameters that name something that exists, so operations get past their 404.
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        "[parameters]\napp = \"fuzz\"\n",
    )
    .expect("config");
    let schema = format!("http://{}/v1/openapi.json", c.addr);
    for (who, token) in [("a fresh user", &fresh), ("an administrator", &admin)] {
        let run = tokio::process::Command::new(&program)
            .current_dir(dir.path())
            .args([
                "run",
                &schema,
                "--header",
                &format!("Authorization: token {token}"),
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "30",
                "--request-timeout",
                "20",
                "--max-failures",
                "5",
                "--workers",
                "1",
                "--no-color",
                "--generation-database",
                "none",
                // These end the session under test (a new token, a cancelled account).
                "--exclude-path-regex",
                "^/v1/auth/(tokens|cancel|passwd)",
            ])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(600), run)
            .await
            .expect("schemathesis finishes within 10 minutes (a hang would not)")
            .expect("schemathesis runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schemathesis as {who} found failures:\n{text}"
        );
        let health = c.req("GET", "/healthz", None, None).await;
        assert_eq!(
            health.status, 200,
            "the controller still serves after {who}'s run"
        );
    }
}
