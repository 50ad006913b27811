//! `deisctl config` against a real etcd: set, get, rm, file-valued keys and bad input.

use deis_testkit::Etcd;

const BIN: &str = env!("CARGO_BIN_EXE_deisctl");

fn deisctl(etcd: &Etcd, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("DEIS_ETCD_ENDPOINTS", etcd.endpoint())
        .output()
        .expect("deisctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_get_rm_on_etcd() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let cert = dir.path().join("platform.crt");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .expect("cert");

    assert_eq!(
        deisctl(&etcd, &["config", "platform", "set", "domain=example.com"]),
        (0, "example.com\n".to_owned(), String::new())
    );
    let (code, out, _) = deisctl(
        &etcd,
        &[
            "config",
            "router@1",
            "set",
            "bodySize=10m",
            "hsts/enabled=true",
            &format!("sslCert={}", cert.display()),
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.starts_with("10m\ntrue\n-----BEGIN CERTIFICATE-----"),
        "{out}"
    );
    let (code, out, _) = deisctl(
        &etcd,
        &["config", "router", "get", "bodySize", "hsts/enabled"],
    );
    assert_eq!((code, out.as_str()), (0, "10m\ntrue\n"));
    let (code, out, _) = deisctl(&etcd, &["config", "deis-router.service", "get", "sslCert"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("MIIB"),
        "the file's contents were stored: {out}"
    );
    assert_eq!(
        deisctl(&etcd, &["config", "router", "rm", "bodySize"]).1,
        "bodySize\n"
    );
    let (code, _, err) = deisctl(&etcd, &["config", "router", "get", "bodySize"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: /deis/router/bodySize is not set\n")
    );

    // Bad input: one line saying what to do, exit 1, nothing stored.
    let (code, _, err) = deisctl(&etcd, &["config", "router", "set", "justakey"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: 'justakey' does not match the pattern 'key=var', ex: foo=bar\n"
        )
    );
    let (code, _, err) = deisctl(
        &etcd,
        &["config", "router", "set", "sslKey=/nonexistent/key.pem"],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: cannot read /nonexistent/key.pem for sslKey"),
        "{err}"
    );
    let (code, _, err) = deisctl(&etcd, &["machines"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a command of this deisctl"), "{err}");
}

#[test]
fn an_unreachable_etcd_is_one_line() {
    let out = std::process::Command::new(BIN)
        .args(["config", "router", "get", "x"])
        .env("DEIS_ETCD_ENDPOINTS", "http://127.0.0.1:1")
        .output()
        .expect("deisctl runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("check --endpoint or DEIS_ETCD_ENDPOINTS"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_units_renders_images_and_systemd_accepts_them() {
    let etcd = Etcd::start().await;
    let dir = tempfile::tempdir().expect("dir");
    deisctl(&etcd, &["config", "platform", "set", "version=v2.0.1"]);
    deisctl(
        &etcd,
        &[
            "config",
            "router",
            "set",
            "image=registry.example.com/router:canary",
        ],
    );
    let (code, out, err) = deisctl(
        &etcd,
        &["refresh-units", "-p", &dir.path().display().to_string()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Refreshed deis-controller.service unit from v2.0.1\n"),
        "{out}"
    );
    let controller =
        std::fs::read_to_string(dir.path().join("deis-controller.service")).expect("unit");
    assert!(
        controller.contains("  deis/controller:v2.0.1'\n"),
        "{controller}"
    );
    let router = std::fs::read_to_string(dir.path().join("deis-router@.service")).expect("unit");
    assert!(
        router.contains("registry.example.com/router:canary"),
        "{router}"
    );
    assert!(router.contains("[X-Fleet]"), "fleet sections are kept");

    // systemd accepts every rendered unit (a template through an instance of it).
    let analyze = deis_testkit::require("systemd-analyze", "systemd");
    std::fs::copy(
        dir.path().join("deis-router@.service"),
        dir.path().join("deis-router@1.service"),
    )
    .expect("instance");
    for unit in [
        "deis-builder.service",
        "deis-controller.service",
        "deis-database.service",
        "deis-logger.service",
        "deis-logspout.service",
        "deis-registry-proxy.service",
        "deis-registry.service",
        "deis-router@1.service",
    ] {
        let out = std::process::Command::new(&analyze)
            .arg("verify")
            .arg(dir.path().join(unit))
            .output()
            .expect("systemd-analyze runs");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
