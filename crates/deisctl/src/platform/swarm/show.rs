//! `list`, `status` and `journal` on a Swarm: each task with its host, as fleet showed units
//! with their machines.

use std::io::Write;

use bollard::models::{Task, TaskState};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::SwarmPlatform;
use super::lifecycle::Svc;
use super::nodes::Node;
use crate::Error;
use crate::platform::component::Target;
use crate::platform::show::print_table;

/// systemd's words for a task's state.
fn words(task: &Task) -> (&'static str, &'static str) {
    match task.status.as_ref().and_then(|s| s.state) {
        Some(TaskState::RUNNING) => ("active", "running"),
        Some(TaskState::STARTING) => ("activating", "start-post"),
        Some(
            TaskState::NEW
            | TaskState::PENDING
            | TaskState::ASSIGNED
            | TaskState::ACCEPTED
            | TaskState::PREPARING
            | TaskState::READY,
        ) => ("activating", "start-pre"),
        Some(TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED) => ("failed", "failed"),
        _ => ("inactive", "dead"),
    }
}

impl SwarmPlatform {
    /// Each service's tasks (one row per task; a loaded service with none gets one row).
    async fn rows(&self, svcs: &[Svc]) -> Result<Vec<(Svc, Option<Task>)>, Error> {
        let mut rows = Vec::new();
        for svc in svcs {
            let mut tasks = self.tasks(&svc.id).await?;
            tasks.sort_by_key(|t| (t.slot, t.node_id.clone()));
            if tasks.is_empty() {
                rows.push((svc.clone(), None));
            }
            rows.extend(tasks.into_iter().map(|t| (svc.clone(), Some(t))));
        }
        Ok(rows)
    }

    fn machine(nodes: &[Node], task: Option<&Task>) -> String {
        task.and_then(|t| t.node_id.as_ref())
            .and_then(|id| nodes.iter().find(|n| &n.id == id))
            .map_or_else(|| "-".to_owned(), Node::machine)
    }

    pub(crate) async fn list(&self) -> Result<(), Error> {
        let svcs: Vec<Svc> = self.services().await?.into_values().collect();
        let nodes = self.nodes().await?;
        let rows: Vec<[String; 5]> = self
            .rows(&svcs)
            .await?
            .iter()
            .map(|(svc, task)| {
                let (active, sub) = task.as_ref().map_or(("inactive", "dead"), words);
                [
                    svc.unit.unit_name(&self.prefix),
                    Self::machine(&nodes, task.as_ref()),
                    "loaded".to_owned(),
                    active.to_owned(),
                    sub.to_owned(),
                ]
            })
            .collect();
        print_table(["UNIT", "MACHINE", "LOAD", "ACTIVE", "SUB"], &rows);
        Ok(())
    }

    async fn matching(&self, targets: &[Target]) -> Result<Vec<Svc>, Error> {
        let svcs = self.services().await?;
        let mut found = Vec::new();
        for target in targets {
            let before = found.len();
            found.extend(svcs.values().filter(|s| target.covers(s.unit)).cloned());
            if found.len() == before {
                return Err(Error::Message(format!(
                    "{target} is not installed; run deisctl install {target}"
                )));
            }
        }
        Ok(found)
    }

    pub(crate) async fn status(&self, targets: &[Target]) -> Result<(), Error> {
        let svcs = self.matching(targets).await?;
        let nodes = self.nodes().await?;
        for (svc, task) in self.rows(&svcs).await? {
            let (active, sub) = task.as_ref().map_or(("inactive", "dead"), words);
            println!("● {}", svc.unit.unit_name(&self.prefix));
            println!("   Machine: {}", Self::machine(&nodes, task.as_ref()));
            println!(
                "   Desired: {}",
                if svc.launched { "launched" } else { "loaded" }
            );
            println!("   Active: {active} ({sub})");
            if let Some(status) = task.as_ref().and_then(|t| t.status.as_ref()) {
                if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
                    println!("   State: {message}");
                }
                if let Some(err) = status.err.as_deref().filter(|e| !e.is_empty()) {
                    println!("   Error: {err}");
                }
                if let Some(at) = &status.timestamp {
                    println!("   Since: {at}");
                }
                if let Some(id) = status
                    .container_status
                    .as_ref()
                    .and_then(|c| c.container_id.as_deref())
                {
                    println!("   Container: {}", id.get(..12).unwrap_or(id));
                }
            }
            let image = svc
                .spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            println!("   Image: {image}");
        }
        Ok(())
    }

    pub(crate) async fn journal(
        &self,
        targets: &[Target],
        lines: usize,
        follow: bool,
    ) -> Result<(), Error> {
        let svcs = self.matching(targets).await?;
        let nodes = self.nodes().await?;
        for svc in svcs {
            let options = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(follow)
                .tail(&lines.to_string())
                .build();
            // The Swarm waits for a down host's share of a service's log for ever: then the
            // log is read task by task from the hosts that are up, and the rest named.
            let tasks = self.all_tasks(&svc.id).await?;
            let on_down_host = |t: &Task| {
                t.node_id
                    .as_ref()
                    .is_some_and(|id| !nodes.iter().any(|n| &n.id == id && n.ready))
            };
            let mut logs = if tasks.iter().any(on_down_host) {
                let mut readable = Vec::new();
                for task in &tasks {
                    let Some(id) = task.id.as_deref() else {
                        continue;
                    };
                    if on_down_host(task) {
                        eprintln!(
                            "{}: the log of task {id} is on a host that is down ({}); it cannot be read until the host is back",
                            svc.unit.unit_name(&self.prefix),
                            task.node_id.as_deref().unwrap_or("?")
                        );
                    } else if task.node_id.is_some() {
                        readable.push(self.docker.task_logs(id, Some(options.clone())).boxed());
                    }
                }
                futures_util::stream::select_all(readable).boxed()
            } else {
                self.docker.service_logs(&svc.id, Some(options)).boxed()
            };
            let mut out = std::io::stdout();
            while let Some(chunk) = logs.next().await {
                let chunk = chunk.map_err(|e| {
                    Error::Message(format!("cannot read the log of {}: {e}", svc.unit))
                })?;
                let _ = out.write_all(&chunk.into_bytes());
            }
            let _ = out.flush();
        }
        Ok(())
    }
}
