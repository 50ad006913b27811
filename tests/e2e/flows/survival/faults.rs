//! Each fault of the survival test: made as an operator would meet it (a process SIGKILLed, a
//! member gone, a host gone), measured, and checked from the users' side.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use deis_testkit::eventually;
use tokio::io::AsyncBufReadExt;

use super::kept;
use super::traffic::Traffic;
use super::{Cost, SCALE, app_tasks, at_full_scale};
use crate::flows::Day;
use crate::setup::ClusterPlatform;
use crate::support::{Ran, commit, figure};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    RedisLost,
    BuilderKilledMidPush,
    LeaderKilledMidDeploy,
    EtcdMajorityLost,
}

pub(crate) struct Faults<'a> {
    pub(crate) platform: &'a ClusterPlatform,
    pub(crate) day: &'a Day<'a, ClusterPlatform>,
    pub(crate) traffic: &'a Traffic,
    /// An app of the owner's whose config probes whether the platform takes changes.
    pub(crate) probe: &'a str,
}

/// What `text` says, on one line (for "what users saw").
pub(super) fn said(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.join(" ") {
        line if line.is_empty() => "nothing".to_owned(),
        line => line.chars().take(200).collect(),
    }
}

impl Faults<'_> {
    pub(crate) async fn run(&self, fault: Fault, hosts: &[usize]) -> Cost {
        match fault {
            Fault::RedisLost => self.redis_lost(hosts).await,
            Fault::BuilderKilledMidPush => self.builder_killed_mid_push(hosts).await,
            Fault::LeaderKilledMidDeploy => self.leader_killed_mid_deploy(hosts).await,
            Fault::EtcdMajorityLost => self.etcd_majority_lost(hosts).await,
        }
    }

    /// Waits until the app is at full scale on `hosts` again, answering from every container,
    /// within `secs`.
    pub(super) async fn settled(&self, hosts: &[usize], secs: u64) {
        at_full_scale(
            self.platform,
            self.traffic,
            hosts,
            &self.day.app,
            Instant::now(),
            Duration::from_secs(secs),
        )
        .await;
    }

    /// SIGKILL to a component's container; its service scaled to nothing so that the Swarm does
    /// not bring it straight back.
    fn lose(&self, component: &str) {
        let (at, id) = self.platform.container_of(component);
        self.platform.docker(at, &["kill", &id]);
        self.platform.scale_service(0, component, 0);
    }

    /// Waits until a component's task runs and its container is healthy again.
    pub(super) async fn healthy(&self, component: &str) {
        eventually(Duration::from_secs(120), component, || async {
            let service = self.platform.service(component);
            let Some((at, id)) = self.platform.try_container_of(component) else {
                return Err(format!("no task of {service} yet"));
            };
            let health = self.platform.docker(
                at,
                &[
                    "inspect",
                    "--format",
                    "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
                    &id,
                ],
            );
            // Healthy, or running for components without a health check.
            match health.first().map(String::as_str) {
                Some("healthy" | "running") => Ok(()),
                other => Err(format!("{service}: {other:?}")),
            }
        })
        .await;
    }

    /// `deis config:set` on the probe app: what it printed, or an error with what it printed.
    pub(super) async fn change(&self, value: &str) -> Ran {
        kept::run(
            self.day,
            &["config:set", &format!("PROBE={value}"), "-a", self.probe],
        )
        .await
    }

    /// Redis lost: the app keeps serving, a container started meanwhile has its line in the
    /// logs once Redis is back (the log shippers keep what the logger cannot store yet).
    async fn redis_lost(&self, hosts: &[usize]) -> Cost {
        let app = &self.day.app;
        let mark = self.traffic.mark();
        let before: BTreeSet<String> = app_tasks(self.platform, hosts, app)
            .into_iter()
            .map(|(_, id, _)| id)
            .collect();
        self.lose("cache");
        self.day
            .deis(&["scale", &format!("cmd={}", SCALE + 1)])
            .await;
        let started = eventually(
            Duration::from_secs(60),
            "a container started while Redis is away",
            || async {
                let now = app_tasks(self.platform, hosts, app);
                match now.iter().find(|(_, id, _)| !before.contains(id)) {
                    Some((_, id, _)) if now.len() == SCALE + 1 => Ok(id.clone()),
                    _ => Err(format!("{now:?}")),
                }
            },
        )
        .await;
        let logs = kept::run(self.day, &["logs", "-n", "5"]).await;
        self.platform.scale_service(0, "cache", 1);
        self.healthy("cache").await;
        eventually(
            Duration::from_secs(90),
            "the line of the container started while Redis was away",
            || async {
                let logs = kept::ok(self.day, &["logs", "-n", "1000"]).await;
                if logs.contains(&format!("started {}", &started[..12])) {
                    Ok(())
                } else {
                    Err(logs)
                }
            },
        )
        .await;
        let recovered = mark.at.elapsed();
        kept::ok(self.day, &["scale", &format!("cmd={SCALE}")]).await;
        self.settled(hosts, 60).await;
        let seen = self.traffic.since(mark);
        assert_eq!(seen.failed, 0, "Redis lost: {:?}", seen.failures);
        Cost {
            fault: "Redis lost",
            recovered,
            seen,
            users_saw: format!(
                "`deis logs` while away: {}; every line there once Redis was back",
                said(&logs.out)
            ),
        }
    }

    /// The builder SIGKILLed while it builds a push: git says the push failed; the next push,
    /// once the Swarm has started the builder again, works.
    async fn builder_killed_mid_push(&self, hosts: &[usize]) -> Cost {
        let mark = self.traffic.mark();
        commit(&self.day.work, &[("README", "builder killed\n")], "killed");
        let mut push = self
            .day
            .owner
            .push_command(&self.day.work)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git push starts");
        let stderr = push.stderr.take().expect("git's stderr");
        let (lines, mut read) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut output = String::new();
        let building = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = read.recv().await {
                output.push_str(&line);
                output.push('\n');
                if line.contains("Building Docker image") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(building, Ok(true), "the build started: {output}");
        let (at, id) = self.platform.container_of("builder");
        self.platform.docker(at, &["kill", &id]);
        let status = tokio::time::timeout(Duration::from_secs(120), push.wait())
            .await
            .expect("git push ends once the builder is gone")
            .expect("git push ran");
        while let Ok(line) = read.try_recv() {
            output.push_str(&line);
            output.push('\n');
        }
        assert!(!status.success(), "the push of a killed builder: {output}");
        let last = output
            .lines()
            .rev()
            .find(|l| l.contains("fatal") || l.contains("error"))
            .unwrap_or_default()
            .to_owned();
        assert!(!last.is_empty(), "git says the push failed: {output}");
        self.healthy("builder").await;
        // Back for users once the routers relay to it (its address may have moved host).
        let ssh = crate::setup::Setup::ssh(self.platform);
        eventually(
            Duration::from_secs(60),
            "the builder answering through the router",
            || async move {
                let banner = async {
                    let mut stream = tokio::net::TcpStream::connect(ssh).await.ok()?;
                    let mut line = String::new();
                    let mut reader = tokio::io::BufReader::new(&mut stream);
                    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)
                        .await
                        .ok()?;
                    Some(line)
                };
                match tokio::time::timeout(Duration::from_secs(5), banner).await {
                    Ok(Some(line)) if line.starts_with("SSH-") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        let pushed = self.day.owner.push(&self.day.work).await;
        assert!(pushed.ok, "the next push: {}", pushed.out);
        self.settled(hosts, 90).await;
        let recovered = mark.at.elapsed();
        let seen = self.traffic.since(mark);
        assert_eq!(seen.failed, 0, "builder killed: {:?}", seen.failures);
        Cost {
            fault: "builder killed mid-push",
            recovered,
            seen,
            users_saw: format!("git push: {last}; the next push worked"),
        }
    }

    /// The leading controller SIGKILLed while it deploys a push: the other one (or the same one,
    /// restarted) leads within the lease's TTL; afterwards the newest release runs at the app's
    /// scale and nothing of the older ones is left.
    async fn leader_killed_mid_deploy(&self, hosts: &[usize]) -> Cost {
        let app = &self.day.app;
        let releases_before: BTreeSet<String> = app_tasks(self.platform, hosts, app)
            .into_iter()
            .map(|(_, _, r)| r)
            .collect();
        let leader_host = self.platform.leader().expect("a leading controller");
        commit(&self.day.work, &[("README", "leader killed\n")], "leader");
        let mark = self.traffic.mark();
        let push = tokio::spawn(self.day.owner.push_command(&self.day.work).output());
        eventually(
            Duration::from_secs(120),
            "the new release's containers",
            || async {
                let now = app_tasks(self.platform, hosts, app);
                if now.iter().any(|(_, _, r)| !releases_before.contains(r)) {
                    Ok(())
                } else {
                    Err(format!("{now:?}"))
                }
            },
        )
        .await;
        let ids = self.platform.docker(
            leader_host,
            &[
                "ps",
                "-q",
                "--filter",
                &format!(
                    "label=com.docker.swarm.service.name={}",
                    self.platform.service("controller")
                ),
            ],
        );
        let id = ids.first().expect("the leader's container");
        self.platform.docker(leader_host, &["kill", id]);
        let killed = Instant::now();
        let pushed = Ran::from(push.await.expect("push task").expect("git push runs"));
        // The builder asks the new leader again: the push succeeds, with one release.
        assert!(
            pushed.ok,
            "the push through a leader's loss: {}",
            pushed.out
        );
        let handover = eventually(Duration::from_secs(60), "a controller leading", || async {
            match self.platform.leader() {
                Some(_) => Ok(killed.elapsed()),
                None => Err("none leads".to_owned()),
            }
        })
        .await;
        let release = at_full_scale(
            self.platform,
            self.traffic,
            hosts,
            app,
            killed,
            Duration::from_secs(120),
        )
        .await;
        let recovered = mark.at.elapsed();
        eventually(
            Duration::from_secs(60),
            "the older releases' services gone",
            || async {
                let services = self.platform.docker(
                    0,
                    &[
                        "service",
                        "ls",
                        "--filter",
                        &format!("label=deis.app={app}"),
                        "--format",
                        "{{.Name}}",
                    ],
                );
                if services.len() == 1 {
                    Ok(())
                } else {
                    Err(format!("{services:?}"))
                }
            },
        )
        .await;
        let releases = kept::ok(self.day, &["releases"]).await;
        let newest = releases
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('v'))
            .unwrap_or_default()
            .to_owned();
        assert!(
            newest.starts_with(&format!("v{} ", release.trim_start_matches('v'))),
            "the newest release ({newest}) is the one running ({release}); push: {}",
            pushed.out
        );
        let seen = self.traffic.since(mark);
        assert_eq!(seen.failed, 0, "leader killed: {:?}", seen.failures);
        Cost {
            fault: "controller leader killed mid-deploy",
            recovered,
            seen,
            users_saw: format!(
                "a new leader after {:.1} s; git push succeeded{}",
                handover.as_secs_f64(),
                if pushed.out.contains("asking again") {
                    " (it said the controller went away and asked again)"
                } else {
                    ""
                }
            ),
        }
    }

    /// Two of etcd's three members lost: the apps keep serving from the routers' tables, a
    /// change is refused with a clear message; with the members back, changes are taken.
    async fn etcd_majority_lost(&self, hosts: &[usize]) -> Cost {
        let mark = self.traffic.mark();
        self.lose("etcd-2");
        self.lose("etcd-3");
        // The leader stops once its lead is not renewed for its lease's time; the controllers
        // then stand by and say why they refuse.
        let refused = deis_testkit::within(Duration::from_secs(90), || async {
            let ran = self.change("majority-lost").await;
            if !ran.ok && ran.out.contains("config store") {
                Ok(ran.out)
            } else {
                Err(format!("{}: {}", ran.ok, ran.out))
            }
        })
        .await
        .unwrap_or_else(|last| {
            let etcd = self.platform.deisctl(&["journal", "etcd-1", "-n", "200"]);
            panic!(
                "no change refused 90 s after etcd's majority was lost; last: {last}\n{}\nthe services: {:?}\netcd-1's log:\n{}{}",
                super::data::routes_seen(self.platform, hosts),
                self.platform.docker(0, &["service", "ls"]),
                String::from_utf8_lossy(&etcd.stdout),
                String::from_utf8_lossy(&etcd.stderr),
            )
        });
        // Until no controller leads any more (their leases lapse), and beyond.
        eventually(Duration::from_secs(60), "no controller leading", || async {
            match self.platform.leader() {
                Some(i) => Err(format!("host {i}'s controller leads")),
                None => Ok(()),
            }
        })
        .await;
        let served = self.traffic.sent();
        eventually(Duration::from_secs(30), "more requests", || async {
            if self.traffic.sent() > served + 200 {
                Ok(())
            } else {
                Err(self.traffic.sent().to_string())
            }
        })
        .await;
        let again = self.change("still-lost").await;
        assert!(!again.ok, "a change without etcd's majority: {}", again.out);
        let back = Instant::now();
        self.platform.scale_service(0, "etcd-2", 1);
        self.platform.scale_service(0, "etcd-3", 1);
        eventually(Duration::from_secs(120), "changes taken again", || async {
            let ran = self.change("back").await;
            if ran.ok { Ok(()) } else { Err(ran.out) }
        })
        .await;
        let taken_after = back.elapsed();
        self.settled(hosts, 60).await;
        let seen = self.traffic.since(mark);
        assert_eq!(seen.failed, 0, "etcd's majority lost: {:?}", seen.failures);
        Cost {
            fault: "etcd majority lost",
            recovered: taken_after,
            seen,
            users_saw: format!("a change: {}", said(&refused)),
        }
    }

    /// After `lost`'s loss, its etcd member and its controller replaced on the spare host by
    /// `deisctl`: the Swarm's housekeeping first (the dead manager out, the spare promoted),
    /// then the member and the controller. The new member votes: with another member lost
    /// afterwards, changes are still taken.
    pub(crate) async fn lost_host_replaced(&self, lost: usize, hosts: &[usize]) -> Cost {
        let dead = self.platform.cluster.host(lost).name().to_owned();
        let spare = self.platform.cluster.hosts().len() - 1;
        let spare_name = self.platform.cluster.host(spare).name().to_owned();
        let mark = self.traffic.mark();
        self.platform.docker(0, &["node", "demote", &dead]);
        self.platform.docker(0, &["node", "rm", "--force", &dead]);
        self.platform.docker(0, &["node", "promote", &spare_name]);
        let member = lost + 1;
        // Refused: a host that runs a member already, a unit that is not a member or controller.
        let first = self.platform.cluster.host(0).name().to_owned();
        let taken = self
            .platform
            .deisctl(&["replace", &format!("etcd@{member}"), &first]);
        let said = String::from_utf8_lossy(&taken.stderr);
        assert!(
            !taken.status.success() && said.contains("already runs etcd@1"),
            "{said}"
        );
        let router = self.platform.deisctl(&["replace", "router", &spare_name]);
        let said = String::from_utf8_lossy(&router.stderr);
        assert!(
            !router.status.success() && said.contains("etcd's members"),
            "{said}"
        );
        let replaced = self
            .platform
            .ok(&["replace", &format!("etcd@{member}"), &spare_name]);
        // `deisctl list`'s machines (MACHINE: `host/address`) running a unit.
        let running = |list: &str, unit: &str| -> Vec<String> {
            let unit = format!("{}-{unit}.service", self.platform.prefix);
            list.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|cells| {
                    cells.first() == Some(&unit.as_str()) && cells.get(3) == Some(&"active")
                })
                .filter_map(|cells| cells.get(1).map(|m| (*m).to_owned()))
                .collect()
        };
        let list = self.platform.ok(&["list"]);
        let on = running(&list, &format!("etcd@{member}"));
        assert!(
            on.len() == 1 && on[0].starts_with(&spare_name),
            "etcd@{member} on {spare_name}: {list}\n{replaced}"
        );
        let busy = self.platform.deisctl(&["replace", "controller", &first]);
        let said = String::from_utf8_lossy(&busy.stderr);
        assert!(
            !busy.status.success() && said.contains("runs a controller already"),
            "{said}"
        );
        let moved = self.platform.ok(&["replace", "controller", &spare_name]);
        assert!(moved.contains(&spare_name), "{moved}");
        let mut looked = 0;
        eventually(
            Duration::from_secs(60),
            "two controllers, one on the spare host",
            || {
                looked += 1;
                let list = self.platform.ok(&["list"]);
                let controllers = running(&list, "controller");
                let found = controllers.len() == 2
                    && controllers.iter().any(|m| m.starts_with(&spare_name));
                async move { if found { Ok(()) } else { Err(list) } }
            },
        )
        .await;
        if looked > 1 {
            // Not both at once: what the controllers said (a restart is worth knowing about).
            figure(format_args!(
                "lost host replaced: a controller was not running at first; their log:\n{}",
                self.platform.ok(&["journal", "controller", "-n", "40"])
            ));
        }
        let recovered = mark.at.elapsed();
        let change = self.change("replaced").await;
        assert!(change.ok, "a change with the new member: {}", change.out);
        // The new member counts: the first one lost too, two of three still take changes.
        self.lose("etcd-1");
        let without_first = self.change("without-the-first").await;
        self.platform.scale_service(0, "etcd-1", 1);
        self.healthy("etcd-1").await;
        assert!(
            without_first.ok,
            "a change with members 2 and {member}: {}",
            without_first.out
        );
        self.settled(hosts, 60).await;
        let seen = self.traffic.since(mark);
        assert_eq!(seen.failed, 0, "lost host replaced: {:?}", seen.failures);
        Cost {
            fault: "lost host's etcd member and controller replaced",
            recovered,
            seen,
            users_saw: "nothing".to_owned(),
        }
    }
}

/// A whole host lost (its link down, its engine and containers killed): the Swarm starts the
/// app's lost containers on the other hosts, the routers drop the dead ones' routes, and the
/// platform takes changes again (a new release deploys).
pub(crate) async fn host_lost(
    platform: &ClusterPlatform,
    day: &Day<'_, ClusterPlatform>,
    traffic: &Traffic,
    lost: usize,
    survivors: &[usize],
) -> Cost {
    let all: Vec<usize> = (0..platform.cluster.hosts().len()).collect();
    // Requests already on their way through the lost host's router end first.
    let settled = traffic.sent() + 50;
    eventually(
        Duration::from_secs(30),
        "requests after the switch",
        || async {
            if traffic.sent() > settled {
                Ok(())
            } else {
                Err(traffic.sent().to_string())
            }
        },
    )
    .await;
    let on_lost = app_tasks(platform, &[lost], &day.app).len();
    let led = platform.leader() == Some(lost);
    let before = app_tasks(platform, &all, &day.app).len();
    assert_eq!(before, SCALE);
    let mark = traffic.mark();
    platform.cluster.kill_host(lost);
    at_full_scale(
        platform,
        traffic,
        survivors,
        &day.app,
        mark.at,
        Duration::from_secs(120),
    )
    .await;
    let full_scale = mark.at.elapsed();
    // The operator reads the controllers' log: what the lost host kept is named, not waited
    // for (the Swarm would wait for it for ever).
    let journal = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::from(platform.deisctl_command(&[
            "journal",
            "controller",
            "-n",
            "20",
        ]))
        .kill_on_drop(true)
        .output(),
    )
    .await
    .expect("deisctl journal ends with a host down")
    .expect("deisctl runs");
    let said = String::from_utf8_lossy(&journal.stderr);
    assert!(
        journal.status.success() && said.contains("host that is down"),
        "deisctl journal controller: {said}"
    );
    // The platform takes changes: a new release, at full scale on the surviving hosts.
    let changed = eventually(Duration::from_secs(120), "a change taken", || async {
        let ran = kept::run(day, &["config:set", "AFTER=host-lost"]).await;
        if ran.ok { Ok(ran.out) } else { Err(ran.out) }
    })
    .await;
    assert!(changed.contains("AFTER"), "{changed}");
    at_full_scale(
        platform,
        traffic,
        survivors,
        &day.app,
        Instant::now(),
        Duration::from_secs(90),
    )
    .await;
    let seen = traffic.since(mark);
    // Requests on their way to the lost container may fail; the app is never without routes
    // (the new leader takes over the old one's routes, whose lease lapses).
    let unrouted: Vec<&(Duration, String)> = seen
        .failures
        .iter()
        .filter(|(_, what)| what.contains(": 503 "))
        .collect();
    if !unrouted.is_empty() {
        // What the controllers did about it.
        let journal = platform.deisctl(&["journal", "controller", "-n", "80"]);
        panic!(
            "the app had no routes during the host loss ({} of {} requests failed): {:?}\nthe controllers' log:\n{}{}",
            seen.failed,
            seen.sent,
            unrouted.iter().take(5).collect::<Vec<_>>(),
            String::from_utf8_lossy(&journal.stdout),
            String::from_utf8_lossy(&journal.stderr)
        );
    }
    let late = seen.failed_after(full_scale);
    assert!(
        late.is_empty(),
        "requests failed after the app was at full scale again ({full_scale:?}): {late:?}"
    );
    Cost {
        fault: "host lost",
        recovered: full_scale,
        seen,
        users_saw: format!(
            "{on_lost} of {SCALE} containers and {} were on the lost host; requests to them \
             waited for the routers' retries",
            if led {
                "the leading controller"
            } else {
                "a standing-by controller"
            }
        ),
    }
}
