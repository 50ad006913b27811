//! A tenant plays the attacker against the day's app (its owner is the victim): every attack of
//! the tenant-isolation issue is refused with a clear message, and the victim's app, domain,
//! certificate, logs and images are as they were.

use super::Day;
use crate::setup::Setup;
use crate::support::{Deis, app_name, certificate, docker_lines, http, path_str, work_tree};

/// Runs `deis` as `who`, expecting a refusal whose message contains `says`.
async fn refused(who: &Deis, day: &Day<'_, impl Setup>, args: &[&str], says: &str) {
    let ran = who.run(day.setup.dir(), args).await;
    assert!(!ran.ok, "deis {args:?} should be refused: {}", ran.out);
    assert!(ran.out.contains(says), "deis {args:?}: {}", ran.out);
}

pub(crate) async fn a_tenant_attacks_and_nothing_changes(day: &Day<'_, impl Setup>) {
    let victim_domain = "www.shop.test";
    let domains = day.deis(&["domains"]).await;
    let certs = day.deis(&["certs"]).await;
    let greeting = |page: &str| page.split(' ').next().unwrap_or_default().to_owned();
    let (status, page) = day.setup.get_app(&day.app).await;
    assert_eq!(status, 200, "{page}");
    // `<app>:git-*`, or `<registry>/<app>:git-*` on a platform with a registry.
    let images = docker_lines(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        &format!("reference={}:git-*", day.app),
        "--filter",
        &format!("reference=*/{}:git-*", day.app),
    ]);
    let built = images.first().cloned().expect("the victim's built image");

    let mallory = Deis::register(day.setup, "mallory").await;
    let evil = app_name("evil");
    mallory
        .ok(day.setup.dir(), &["create", &evil, "--no-remote"])
        .await;

    // The controller's name, the victim's platform name, the platform domain, and the victim's
    // custom domain in other letters.
    for domain in [
        "deis.example.com".to_owned(),
        format!("{}.example.com", day.app),
        "example.com".to_owned(),
    ] {
        refused(
            &mallory,
            day,
            &["domains:add", &domain, "-a", &evil],
            "only an administrator may add it",
        )
        .await;
    }
    refused(
        &mallory,
        day,
        &["domains:add", "WWW.Shop.TEST", "-a", &evil],
        "is already in use by another app",
    )
    .await;

    // A certificate for the victim's domain.
    let (cert, key) = certificate(victim_domain);
    let (cert_file, key_file) = (
        day.setup.dir().join("forged.crt"),
        day.setup.dir().join("forged.key"),
    );
    std::fs::write(&cert_file, cert).expect("certificate file");
    std::fs::write(&key_file, key).expect("key file");
    refused(
        &mallory,
        day,
        &["certs:add", &path_str(&cert_file), &path_str(&key_file)],
        "which is not a custom domain of an app of yours",
    )
    .await;

    // The victim's built code, a platform image, an image by ID prefix.
    refused(
        &mallory,
        day,
        &["pull", &built, "-a", &evil],
        &format!("was built for the app {}", day.app),
    )
    .await;
    refused(
        &mallory,
        day,
        &["pull", "deis/controller:latest", "-a", &evil],
        "is not allowed",
    )
    .await;
    refused(
        &mallory,
        day,
        &["pull", "0a1b", "-a", &evil],
        "looks like an image ID",
    )
    .await;

    // A Dockerfile that builds on the victim's image (the build runs on the shared engine).
    let work = work_tree(
        &day.setup.dir().join("evil-work"),
        &[(
            "Dockerfile",
            &format!("FROM {built}\nCMD cat /etc/passwd\n"),
        )],
    );
    mallory
        .ok(&work, &["git:remote", "-a", evil.as_str()])
        .await;
    super::use_builder(day.setup, &work, &evil);
    let pushed = mallory.push(&work).await;
    assert!(
        !pushed.ok
            && pushed
                .out
                .contains(&format!("was built for the app {}", day.app)),
        "{}",
        pushed.out
    );

    // A buildpack that would clone the victim's repository out of the builder's data.
    refused(
        &mallory,
        day,
        &[
            "config:set",
            &format!(
                "BUILDPACK_URL=file:///var/lib/deis/buil%64er/repos/{}.git",
                day.app
            ),
            "-a",
            &evil,
        ],
        "cannot be used",
    )
    .await;

    // The logger's own API, read and erase, without the platform's secret.
    for method in ["GET", "DELETE"] {
        let (status, body) = http(
            day.setup.logger(),
            method,
            "logger",
            &format!("/{}", day.app),
            None,
            "",
        )
        .await;
        assert_eq!(status, 401, "{method} on the logger: {body}");
    }

    from_inside_an_app_container(day, &mallory, &evil).await;
    // A reboot empties the kernel's rules; the platform, brought back, sets them again.
    if day.setup.reboot().await {
        from_inside_an_app_container(day, &mallory, &evil).await;
    }

    // The platform keeps an administrator: the owner registered first and is the only one.
    let ran = day
        .owner
        .run(&day.work, &["perms:delete", "owner", "--admin"])
        .await;
    assert!(
        !ran.ok && ran.out.contains("is the last administrator"),
        "{}",
        ran.out
    );

    // Nothing of the victim's changed.
    assert_eq!(day.deis(&["domains"]).await, domains);
    assert_eq!(day.deis(&["certs"]).await, certs);
    let (status, now) = day.setup.get_app(&day.app).await;
    assert_eq!((status, greeting(&now)), (200, greeting(&page)), "{now}");
    let logs = day.deis(&["logs"]).await;
    assert!(logs.contains(&format!("{}[cmd.", day.app)), "{logs}");
    assert!(
        docker_lines(&["images", "-q", &built]).len() == 1,
        "the victim's image is still there"
    );
    mallory
        .ok(
            day.setup.dir(),
            &["destroy", "-a", &evil, &format!("--confirm={evil}")],
        )
        .await;
}

/// `deis run` in the attacker's app: a port bound on every address of the host (as etcd, the
/// controller or the logger are in production), the platform's own ports, and the victim's
/// container are all out of reach; a container on Docker's default bridge reaches that same
/// host port (so the check is not vacuous).
async fn from_inside_an_app_container(day: &Day<'_, impl Setup>, mallory: &Deis, evil: &str) {
    let evil_image = super::serving_image(&day.setup.base_image(), "evil");
    mallory
        .ok(day.setup.dir(), &["pull", &evil_image, "-a", evil])
        .await;
    // A port on every address that answers and hangs up, as a service would.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("a port on every address");
    let open = listener.local_addr().expect("address").port();
    let answering = tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    let victim = super::app_containers(day.setup, &day.app)
        .into_iter()
        .next()
        .expect("a victim container");
    let victim_ip = docker_lines(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        &victim,
    ])
    .join(" ");
    let victim_ip = victim_ip
        .split_whitespace()
        .next()
        .expect("victim's address");
    let victim_port = docker_lines(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"deis.port\"}}",
        &victim,
    ]);
    let victim_port = victim_port.first().expect("victim's port");
    let mut targets = vec![format!("$gw:{open}"), format!("{victim_ip}:{victim_port}")];
    for port in day.setup.platform_ports() {
        targets.push(format!("$gw:{port}"));
    }
    let script = format!(
        "gw=$(ip route | awk '/default/ {{print $3}}'); for t in {}; do if timeout 10 nc -w 2 ${{t%:*}} ${{t#*:}} </dev/null; then echo reached-$t; else echo refused-$t; fi; done",
        targets.join(" ")
    );
    let ran = mallory
        .ok(day.setup.dir(), &["run", "-a", evil, &script])
        .await;
    let said = |word: &str| ran.lines().filter(|l| l.starts_with(word)).count();
    assert_eq!(said("reached-"), 0, "from inside an app container: {ran}");
    assert_eq!(said("refused-"), targets.len(), "{ran}");

    // The control: Docker's default bridge reaches that host port.
    let control = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--label",
            &day.setup.app_label(),
            &day.setup.base_image(),
            "sh",
            "-c",
            &format!("gw=$(ip route | awk '/default/ {{print $3}}'); timeout 10 nc -w 2 $gw {open} </dev/null && echo reached"),
        ])
        .output()
        .expect("docker runs");
    assert!(
        String::from_utf8_lossy(&control.stdout).contains("reached"),
        "a container on the default bridge reaches the host port: {}",
        String::from_utf8_lossy(&control.stderr)
    );
    answering.abort();
    docker_lines(&["rmi", "-f", &evil_image]);
}
