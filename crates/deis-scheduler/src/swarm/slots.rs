//! Which of a Swarm service's tasks serve: the slots the Swarm wants, the task running in each
//! on a host known to be up, the container number of each (see [`numbered`]) and its published
//! port. Pure functions of what the Swarm reports, so that each rule has its unit test.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{Task, TaskState};

/// The port a task's traffic port is published on (host mode: on its node).
pub(super) fn published_port(task: &Task) -> Option<u16> {
    task.status
        .as_ref()
        .and_then(|s| s.port_status.as_ref())
        .and_then(|p| p.ports.as_ref())
        .and_then(|ports| ports.iter().find_map(|p| p.published_port))
        .and_then(|p| u16::try_from(p).ok())
}

/// Whether a task is on a host known to be up (`nodes`), or not yet placed.
pub(super) fn on_live_node(task: &Task, nodes: &HashMap<String, String>) -> bool {
    task.node_id.as_ref().is_none_or(|n| nodes.contains_key(n))
}

/// The slots the Swarm wants a task in, on hosts known to be up: right after a scale-down the
/// removed slots are still wanted for a moment, right after a scale-up the new ones are already.
pub(super) fn wanted_slots(tasks: &[Task], nodes: &HashMap<String, String>) -> BTreeSet<i64> {
    tasks
        .iter()
        .filter(|t| matches!(t.desired_state, Some(TaskState::RUNNING)))
        .filter(|t| on_live_node(t, nodes))
        .filter_map(|t| t.slot)
        .collect()
}

/// What a service is still waiting for before its `replicas` tasks serve: every wanted slot
/// running (with its published port when it takes `traffic`), and no slot on its way in or out.
/// `None` when nothing.
pub(super) fn awaited(
    wanted: &BTreeSet<i64>,
    running: &[Task],
    ports: &[Option<u16>],
    replicas: u32,
    traffic: bool,
) -> Option<String> {
    if wanted.len() != replicas as usize {
        return Some(format!("the Swarm wants slots {wanted:?}"));
    }
    let runs: BTreeSet<i64> = running.iter().filter_map(|t| t.slot).collect();
    let starting: Vec<&i64> = wanted.difference(&runs).collect();
    if !starting.is_empty() {
        return Some(format!("slots {starting:?} not running yet"));
    }
    let portless: Vec<String> = running
        .iter()
        .zip(ports)
        .filter(|(_, port)| traffic && port.is_none())
        .map(|(t, _)| {
            format!(
                "slot {} (task {}) has no published port",
                t.slot.unwrap_or(0),
                t.id.as_deref().unwrap_or("?")
            )
        })
        .collect();
    (!portless.is_empty()).then(|| portless.join(", "))
}

/// The published port of each of `running` (by slot, as [`live_tasks`] gives them). A Swarm
/// whose leading manager changed may report a task that runs on since with no port at all
/// (seen with Docker 20.10 after the loss of the leading manager's host): then the port of
/// that container number's last published route is taken, if that route is on the task's node
/// and no other task there reports the port as its own. The health check that follows tells
/// whether it answers.
pub(super) fn task_ports(
    running: &[Task],
    nodes: &HashMap<String, String>,
    known: impl Fn(u32) -> Option<String>,
) -> Vec<Option<u16>> {
    let node_of = |t: &Task| t.node_id.as_ref().and_then(|n| nodes.get(n)).cloned();
    let reported: BTreeSet<(String, u16)> = running
        .iter()
        .filter_map(|t| Some((node_of(t)?, published_port(t)?)))
        .collect();
    numbered(running)
        .map(|(num, task)| {
            published_port(task).or_else(|| {
                let node = node_of(task)?;
                let (host, port) = known(num)?
                    .rsplit_once(':')
                    .map(|(h, p)| (h.to_owned(), p.parse::<u16>().ok()))?;
                let port = port?;
                (host == node && !reported.contains(&(node, port))).then_some(port)
            })
        })
        .collect()
}

/// The tasks that run on hosts known to be up (`nodes`), one per slot (the newest: a lost
/// host's task may still be listed beside its replacement), by slot.
pub(super) fn live_tasks(tasks: Vec<Task>, nodes: &HashMap<String, String>) -> Vec<Task> {
    let mut running: Vec<Task> = tasks
        .into_iter()
        .filter(|t| matches!(t.desired_state, Some(TaskState::RUNNING)))
        .filter(|t| {
            matches!(
                t.status.as_ref().and_then(|s| s.state),
                Some(TaskState::RUNNING)
            )
        })
        .filter(|t| on_live_node(t, nodes))
        .collect();
    running.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let mut by_slot: BTreeMap<i64, Task> = BTreeMap::new();
    for task in running {
        by_slot.insert(task.slot.unwrap_or(0), task);
    }
    by_slot.into_values().collect()
}

/// Container numbers for slots: the `k`-th lowest slot is container `k`. A Swarm scaling down
/// removes the tasks of its choice (on the busiest hosts), not the highest slots, so a service
/// scaled from 3 to 2 may keep slots 1 and 3: they are containers 1 and 2, and every number up
/// to the scale has a task.
pub(super) fn numbered<T>(by_slot: impl IntoIterator<Item = T>) -> impl Iterator<Item = (u32, T)> {
    (1u32..).zip(by_slot)
}

#[cfg(test)]
mod tests {
    use bollard::models::{EndpointPortConfig, TaskStatus};

    use super::*;

    fn task(id: &str, node: &str, slot: i64, created: &str) -> Task {
        Task {
            id: Some(id.to_owned()),
            node_id: Some(node.to_owned()),
            slot: Some(slot),
            created_at: Some(created.to_owned()),
            desired_state: Some(TaskState::RUNNING),
            status: Some(TaskStatus {
                state: Some(TaskState::RUNNING),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_lost_hosts_task_does_not_count_and_a_slot_has_its_newest_task() {
        let nodes = HashMap::from([
            ("up-1".to_owned(), "10.0.0.1".to_owned()),
            ("up-2".to_owned(), "10.0.0.2".to_owned()),
        ]);
        let tasks = vec![
            task("lost", "down", 1, "2026-01-01T00:00:00Z"),
            task("new-1", "up-1", 1, "2026-01-01T00:01:00Z"),
            task("old-2", "up-2", 2, "2026-01-01T00:00:00Z"),
            task("new-2", "up-1", 2, "2026-01-01T00:02:00Z"),
            task("three", "up-2", 3, "2026-01-01T00:00:00Z"),
        ];
        let live: Vec<String> = live_tasks(tasks, &nodes)
            .into_iter()
            .filter_map(|t| t.id)
            .collect();
        assert_eq!(live, ["new-1", "new-2", "three"]);
    }

    #[test]
    fn after_a_scale_down_that_kept_slots_1_and_3_both_are_containers() {
        let nodes = HashMap::from([("up".to_owned(), "10.0.0.1".to_owned())]);
        let mut removed = task("two", "up", 2, "2026-01-01T00:00:00Z");
        removed.desired_state = Some(TaskState::SHUTDOWN);
        let tasks = vec![
            task("one", "up", 1, "2026-01-01T00:00:00Z"),
            removed,
            task("three", "up", 3, "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(wanted_slots(&tasks, &nodes), BTreeSet::from([1, 3]));
        let numbers: Vec<(u32, String)> = numbered(live_tasks(tasks, &nodes))
            .filter_map(|(n, t)| Some((n, t.id?)))
            .collect();
        assert_eq!(
            numbers,
            [(1, "one".to_owned()), (2, "three".to_owned())],
            "every container number up to the scale has a task"
        );
    }

    fn with_port(mut task: Task, port: i64) -> Task {
        if let Some(status) = task.status.as_mut() {
            status.port_status = Some(bollard::models::PortStatus {
                ports: Some(vec![EndpointPortConfig {
                    published_port: Some(port),
                    ..Default::default()
                }]),
            });
        }
        task
    }

    #[test]
    fn a_task_whose_port_the_swarm_forgot_keeps_its_route_if_it_is_on_its_node() {
        let nodes = HashMap::from([
            ("up-1".to_owned(), "10.0.0.1".to_owned()),
            ("up-2".to_owned(), "10.0.0.2".to_owned()),
        ]);
        let running = vec![
            task("one", "up-1", 1, "2026-01-01T00:00:00Z"),
            task("two", "up-2", 2, "2026-01-01T00:00:00Z"),
            with_port(task("three", "up-1", 3, "2026-01-01T00:00:00Z"), 32769),
            task("four", "up-1", 4, "2026-01-01T00:00:00Z"),
        ];
        let known = |num: u32| match num {
            1 => Some("10.0.0.1:32768".to_owned()),
            // On another node than its task now: not its port.
            2 => Some("10.0.0.1:32770".to_owned()),
            3 => Some("10.0.0.3:1".to_owned()),
            // Another task's port on that node.
            4 => Some("10.0.0.1:32769".to_owned()),
            _ => None,
        };
        assert_eq!(
            task_ports(&running, &nodes, known),
            [Some(32768), None, Some(32769), None]
        );
    }

    #[test]
    fn a_slot_still_wanted_on_a_live_host_is_waited_for() {
        let nodes = HashMap::from([("up".to_owned(), "10.0.0.1".to_owned())]);
        let mut starting = task("two", "up", 2, "2026-01-01T00:00:00Z");
        starting.status = Some(TaskStatus {
            state: Some(TaskState::STARTING),
            ..Default::default()
        });
        let tasks = vec![
            task("one", "up", 1, "2026-01-01T00:00:00Z"),
            starting,
            task("lost", "down", 3, "2026-01-01T00:00:00Z"),
        ];
        // The lost host's slot is not wanted there; slot 2 is wanted and not yet running.
        assert_eq!(wanted_slots(&tasks, &nodes), BTreeSet::from([1, 2]));
        assert_eq!(live_tasks(tasks, &nodes).len(), 1);
    }
}
