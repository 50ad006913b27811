//! Releases (§7.1-§7.5): a new release from a new config, a new build or a rollback, its
//! summary text, and the deploy that makes the scheduler run it. Callers hold the app's lock.

use std::collections::BTreeMap;

use deis_scheduler::{Desired, ReleaseSpec, SchedulerError};
use deis_types::{AppName, Code, ContainerName, InvalidName, ProcessType, ReleaseVersion};
use serde_json::{Map, Value};

use super::config::{Maps, plain};
use crate::db::{App, Build, Config, Container, DbError, NewRelease, Release, json_map};
use crate::state::AppState;
use crate::time;

/// Why a release could not be made or run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseError {
    /// A row the release needs is not in the database.
    #[error("app {app}: {what} is missing")]
    Missing { app: String, what: &'static str },
    /// The stored app id is not a valid app name.
    #[error("app {app}: the stored id is not a valid app name")]
    Name {
        app: String,
        #[source]
        source: InvalidName,
    },
    /// The scheduler did not run the release; the previous one keeps running. The text is the
    /// scheduler's, which the user sees.
    #[error("{source}")]
    Deploy {
        app: String,
        version: i64,
        #[source]
        source: SchedulerError,
    },
    /// The scheduler failed a one-off run or a restart; the text is the scheduler's.
    #[error("{source}")]
    Scheduler {
        app: String,
        #[source]
        source: SchedulerError,
    },
    /// The app's structure could not be written as JSON.
    #[error("app {app}: encoding its structure failed")]
    Structure {
        app: String,
        #[source]
        source: serde_json::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ReleaseError {
    pub(crate) fn code(&self) -> Code {
        match self {
            ReleaseError::Deploy { .. } | ReleaseError::Scheduler { .. } => Code::Unavailable,
            ReleaseError::Missing { .. }
            | ReleaseError::Name { .. }
            | ReleaseError::Structure { .. } => Code::Internal,
            ReleaseError::Db(e) => e.code(),
        }
    }
}

type Result<T> = std::result::Result<T, ReleaseError>;

/// What a new release changes.
#[derive(Default)]
pub(crate) struct Change {
    /// A new config row to store with the release.
    pub(crate) config: Option<Config>,
    /// A new build row to store with the release.
    pub(crate) build: Option<Build>,
    /// An existing config and build to reuse (a rollback).
    pub(crate) reuse: Option<(String, Option<String>)>,
    /// A summary given by the caller (a rollback's).
    pub(crate) summary: Option<String>,
}

fn missing(app: &str, what: &'static str) -> ReleaseError {
    ReleaseError::Missing {
        app: app.to_owned(),
        what,
    }
}

/// The app's id as an app name.
fn app_name(app: &App) -> Result<AppName> {
    app.id.parse().map_err(|source| ReleaseError::Name {
        app: app.id.clone(),
        source,
    })
}

/// Creates the next release of `app` and deploys it. If the deploy fails the release is
/// removed again and the error returned (503), so the previous release stays current.
pub(crate) async fn create(
    state: &AppState,
    app: &App,
    actor: &str,
    change: Change,
) -> Result<Release> {
    let db = &state.db;
    let latest = db
        .latest_release(&app.id)
        .await?
        .ok_or_else(|| missing(&app.id, "the latest release"))?;
    let (config_uuid, build_uuid) = match (&change.reuse, &change.config, &change.build) {
        (Some((c, b)), _, _) => (c.clone(), b.clone()),
        (None, c, b) => (
            c.as_ref().map_or(latest.config.clone(), |c| c.uuid.clone()),
            b.as_ref().map(|b| b.uuid.clone()).or(latest.build.clone()),
        ),
    };
    let now = time::now();
    let mut release = Release {
        uuid: time::new_uuid(),
        owner: actor.to_owned(),
        app: app.id.clone(),
        version: latest.version + 1,
        summary: String::new(),
        config: config_uuid,
        build: build_uuid,
        created: now,
        updated: now,
    };
    release.summary = match change.summary {
        Some(s) => s,
        None => {
            summary(
                state,
                &latest,
                &release,
                change.config.as_ref(),
                change.build.as_ref(),
                actor,
            )
            .await?
        }
    };
    db.insert_release(NewRelease {
        config: change.config.as_ref(),
        build: change.build.as_ref(),
        release: &release,
    })
    .await?;
    if let Err(e) = deploy(state, app, &release, None).await {
        db.delete_release(&release.uuid).await?;
        return Err(e);
    }
    if release.config != latest.config {
        let config = db
            .config(&release.config)
            .await?
            .ok_or_else(|| missing(&app.id, "the config"))?;
        let values = super::config::string_pairs(&config.config_values)?;
        if let Ok(name) = app.id.parse::<AppName>() {
            state.mirror.config_saved(&name, &values).await;
        }
    }
    event(state, &app.id, &release.summary);
    Ok(release)
}

/// Writes an app event: a line the logger collects into the app's log.
pub(crate) fn event(state: &AppState, app: &str, message: &str) {
    tracing::info!(app.name = app, "[{app}]: {message}");
    state.events.emit(app, message);
}

async fn summary(
    state: &AppState,
    previous: &Release,
    release: &Release,
    new_config: Option<&Config>,
    new_build: Option<&Build>,
    actor: &str,
) -> Result<String> {
    let db = &state.db;
    let mut parts: Vec<String> = Vec::new();
    if release.build != previous.build
        && let Some(uuid) = &release.build
    {
        let build = match new_build {
            Some(b) => b.clone(),
            None => db
                .build(uuid)
                .await?
                .ok_or_else(|| missing(&release.app, "the build"))?,
        };
        let what = if build.sha.is_empty() {
            build.image.clone()
        } else {
            build.sha.chars().take(7).collect()
        };
        parts.push(format!("{} deployed {what}", build.owner));
    }
    if release.config != previous.config {
        let old = db
            .config(&previous.config)
            .await?
            .ok_or_else(|| missing(&release.app, "the previous config"))?;
        let new = match new_config {
            Some(c) => c.clone(),
            None => db
                .config(&release.config)
                .await?
                .ok_or_else(|| missing(&release.app, "the config"))?,
        };
        let (old_maps, new_maps) = (Maps::from_row(&old)?, Maps::from_row(&new)?);
        let diff = diff_words(&old_maps.values, &new_maps.values, "");
        if !diff.is_empty() {
            parts.push(format!("{} {diff}", new.owner));
        }
        let limits: Vec<&str> = [
            ("memory", &old_maps.memory, &new_maps.memory),
            ("cpu", &old_maps.cpu, &new_maps.cpu),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, _, _)| name)
        .collect();
        if !limits.is_empty() {
            parts.push(format!(
                "{} changed limits for {}",
                new.owner,
                limits.join(", ")
            ));
        }
        let tags = diff_words(&old_maps.tags, &new_maps.tags, "tag ");
        if !tags.is_empty() {
            parts.push(format!("{} {tags}", new.owner));
        }
    }
    if parts.is_empty() {
        return Ok(format!("{actor} changed nothing"));
    }
    Ok(parts.join(" and "))
}

/// `added A, B, changed C, deleted D` between two maps (keys sorted), with `prefix` before each key.
fn diff_words(old: &Map<String, Value>, new: &Map<String, Value>, prefix: &str) -> String {
    let mut added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let mut changed: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    let mut deleted: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    added.sort();
    changed.sort();
    deleted.sort();
    let group = |verb: &str, keys: &[&String]| {
        (!keys.is_empty()).then(|| {
            let list: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
            format!("{verb} {}", list.join(", "))
        })
    };
    [
        group("added", &added),
        group("changed", &changed),
        group("deleted", &deleted),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// The default structure of an app's first build (§7.4).
fn default_structure(build: &Build, procfile: &Map<String, Value>) -> BTreeMap<String, i64> {
    let kind = if build.sha.is_empty()
        || (!build.dockerfile.is_empty() && procfile.is_empty())
        || (!procfile.is_empty() && !procfile.contains_key("web"))
    {
        "cmd"
    } else {
        "web"
    };
    BTreeMap::from([(kind.to_owned(), 1)])
}

/// The structure stored on an app.
pub(crate) fn structure(app: &App) -> Result<BTreeMap<String, i64>> {
    let map = json_map(&app.structure)?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| v.as_i64().map(|n| (k, n)))
        .collect())
}

/// What a release runs: its build, its config and the build's process types; `None` for a
/// release without a build (nothing to run yet).
async fn built(
    state: &AppState,
    release: &Release,
) -> Result<Option<(Build, Config, Map<String, Value>)>> {
    let db = &state.db;
    let Some(build_uuid) = &release.build else {
        return Ok(None);
    };
    let build = db
        .build(build_uuid)
        .await?
        .ok_or_else(|| missing(&release.app, "the build"))?;
    let config = db
        .config(&release.config)
        .await?
        .ok_or_else(|| missing(&release.app, "the config"))?;
    let procfile = json_map(&build.procfile)?;
    Ok(Some((build, config, procfile)))
}

/// Runs `release` with the app's structure (or `new_structure`): stores the desired
/// containers and asks the scheduler to converge; on failure the previous desired state is put
/// back and the error returned. Everything it and the scheduler log is in the span
/// `deploy{app release}`.
#[tracing::instrument(name = "deploy", skip_all, fields(app = %app.id, release = release.version))]
pub(crate) async fn deploy(
    state: &AppState,
    app: &App,
    release: &Release,
    new_structure: Option<BTreeMap<String, i64>>,
) -> Result<()> {
    let db = &state.db;
    let Some((build, config, procfile)) = built(state, release).await? else {
        return Ok(());
    };
    let old_structure = structure(app)?;
    let mut target = new_structure.unwrap_or_else(|| old_structure.clone());
    if target.is_empty() {
        target = default_structure(&build, &procfile);
    }
    let name = app_name(app)?;
    let now = time::now();
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for (ptype, count) in &target {
        let Ok(process_type) = ptype.parse::<ProcessType>() else {
            continue;
        };
        for num in 1..=*count {
            rows.push(Container {
                uuid: time::new_uuid(),
                app: app.id.clone(),
                release_version: release.version,
                ptype: ptype.clone(),
                num,
                created: now,
                updated: now,
            });
            names.push(ContainerName {
                app: name.clone(),
                version: ReleaseVersion(u32::try_from(release.version).unwrap_or(u32::MAX)),
                process_type: process_type.clone(),
                num: u32::try_from(num).unwrap_or(u32::MAX),
            });
        }
    }
    let spec = spec(&name, release, &build, &config, &procfile)?;
    let previous = db.containers(&app.id, None).await?;
    let previous: Vec<Container> = previous.into_iter().filter(|c| c.ptype != "run").collect();
    db.replace_containers(&app.id, &rows).await?;
    let structure_json =
        serde_json::to_string(&target).map_err(|source| ReleaseError::Structure {
            app: app.id.clone(),
            source,
        })?;
    if target != old_structure {
        db.set_structure(&app.id, &structure_json, now).await?;
    }
    let desired = Desired {
        app: name,
        release: spec,
        containers: names,
    };
    if let Err(source) = state.scheduler.converge(&desired).await {
        db.replace_containers(&app.id, &previous).await?;
        if target != old_structure {
            db.set_structure(&app.id, &app.structure, now).await?;
        }
        event(state, &app.id, &source.to_string());
        return Err(ReleaseError::Deploy {
            app: app.id.clone(),
            version: release.version,
            source,
        });
    }
    tracing::info!(containers = desired.containers.len(), "Release running");
    Ok(())
}

/// What the containers of `release` run.
pub(crate) fn spec(
    app: &AppName,
    release: &Release,
    build: &Build,
    config: &Config,
    procfile: &Map<String, Value>,
) -> Result<ReleaseSpec> {
    let maps = Maps::from_row(config)?;
    let mut env: BTreeMap<String, String> = maps
        .values
        .iter()
        .map(|(k, v)| (k.clone(), plain(v)))
        .collect();
    env.insert("DEIS_APP".into(), app.to_string());
    env.insert("DEIS_RELEASE".into(), format!("v{}", release.version));
    if !build.sha.is_empty() {
        env.insert("GIT_SHA".into(), build.sha.clone());
    }
    Ok(ReleaseSpec {
        version: u32::try_from(release.version).unwrap_or(u32::MAX),
        image: build.image.clone(),
        env,
        commands: procfile
            .iter()
            .map(|(k, v)| (k.clone(), plain(v)))
            .collect(),
        memory: maps
            .memory
            .iter()
            .map(|(k, v)| (k.clone(), plain(v)))
            .collect(),
        cpu: maps
            .cpu
            .iter()
            .filter_map(|(k, v)| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(|n| (k.clone(), n))
            })
            .collect(),
        tags: maps
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), plain(v)))
            .collect(),
    })
}

/// What the app should run now, from the database alone: its container rows and the release
/// they belong to. `None` when it should run nothing (no build yet).
pub(crate) async fn current(state: &AppState, app: &App) -> Result<Option<Desired>> {
    let db = &state.db;
    let rows: Vec<Container> = db
        .containers(&app.id, None)
        .await?
        .into_iter()
        .filter(|c| c.ptype != "run")
        .collect();
    let version = match rows.first() {
        Some(row) => row.release_version,
        None => match db.latest_release(&app.id).await? {
            Some(latest) => latest.version,
            None => return Ok(None),
        },
    };
    let Some(release) = db.release(&app.id, version).await? else {
        return Ok(None);
    };
    let Some((build, config, procfile)) = built(state, &release).await? else {
        return Ok(None);
    };
    let name = app_name(app)?;
    let containers = rows
        .iter()
        .filter_map(|c| {
            Some(ContainerName {
                app: name.clone(),
                version: ReleaseVersion(u32::try_from(c.release_version).ok()?),
                process_type: c.ptype.parse().ok()?,
                num: u32::try_from(c.num).ok()?,
            })
        })
        .collect();
    Ok(Some(Desired {
        release: spec(&name, &release, &build, &config, &procfile)?,
        app: name,
        containers,
    }))
}
