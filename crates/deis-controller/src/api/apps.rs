//! Apps (§4.5) and their containers (§4.9): create, list, info, transfer, destroy, logs, run,
//! container lists, restarts and scaling.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use deis_types::{AppName, ContainerName, ProcessType, ReleaseVersion};
use serde_json::{Value, json};

use super::auth::{required, text};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller};
use super::page::Page;
use super::{AppState, render};
use crate::db::{App, Container};
use crate::domain::access::Act;
use crate::domain::release::{self, ReleaseError, event};
use crate::{logs, time};

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    page: Page,
) -> ApiResult<Response> {
    // A page is rendered once per change of the apps: most lists are the same as the last.
    let domain = state.domain().await;
    let (base, limit, offset) = page.key();
    let key = (
        caller.username.clone(),
        caller.is_superuser,
        base,
        limit,
        offset,
        domain.clone(),
    );
    if let Ok(body) = state.db.app_pages().get(&key) {
        return Ok(render::json_body(body));
    }
    // One page rendered at a time: when a change (or the TTL) empties the cache, the requests
    // waiting then take the page the first one rendered instead of each querying again.
    let _rendering = state.db.app_pages_rendering().lock().await;
    let generation = match state.db.app_pages().get(&key) {
        Ok(body) => return Ok(render::json_body(body)),
        Err(generation) => generation,
    };
    let (apps, count) = state
        .db
        .apps_visible(
            &caller.username,
            caller.is_superuser,
            page.limit,
            page.offset,
        )
        .await?;
    let results = apps
        .iter()
        .map(|a| render::app(a, &domain))
        .collect::<Result<_, _>>()?;
    let body = bytes::Bytes::from(
        serde_json::to_vec(&page.envelope(count, results)).map_err(ApiError::internal)?,
    );
    state.db.app_pages().keep(key, body.clone(), generation);
    Ok(render::json_body(body))
}

/// Names that cannot be apps: the controller's own subdomain.
async fn reserved(state: &AppState) -> String {
    state
        .setting("subdomain")
        .await
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "deis".into())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<Response> {
    let requested = text(&body, "id")?;
    let reserved = reserved(&state).await;
    let now = time::now();
    let app = match requested {
        Some(id) => {
            let name: AppName = id
                .parse()
                .map_err(|_| ApiError::field("id", AppName::RULE))?;
            if name.as_str() == reserved {
                return Err(ApiError::field("id", format!("{id} is a reserved name.")));
            }
            match state
                .db
                .create_app(name.as_str(), &caller.username, now)
                .await
            {
                Ok(app) => app,
                Err(e) if e.is_unique_violation() => {
                    return Err(ApiError::field("id", "This field must be unique."));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => loop {
            let id = crate::domain::names::generate();
            match state.db.create_app(&id, &caller.username, now).await {
                Ok(app) => break app,
                Err(e) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        },
    };
    if let Ok(name) = app.id.parse::<AppName>() {
        state.mirror.app_saved(&name, &app.owner).await;
    }
    event(
        &state,
        &app.id,
        &format!("{} created initial release", app.owner),
    );
    let domain = state.domain().await;
    Ok((StatusCode::CREATED, Json(render::app(&app, &domain)?)).into_response())
}

pub(crate) async fn info(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    Ok(Json(render::app(&app, &state.domain().await)?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    if let Some(owner) = text(&body, "owner")? {
        if !(caller.is_superuser || app.owner == caller.username) {
            return Err(ApiError::Forbidden);
        }
        let new_owner = state.db.user(&owner).await?.ok_or(ApiError::NotFound)?;
        state
            .db
            .set_app_owner(&app.id, &new_owner.username, time::now())
            .await?;
        if let Ok(name) = app.id.parse::<AppName>() {
            state.mirror.app_saved(&name, &new_owner.username).await;
        }
    }
    Ok(StatusCode::OK)
}

pub(crate) async fn destroy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &id, Act::Delete).await?;
    let _guard = state.lock(&app.id).await?;
    let name: AppName = app.id.parse().map_err(ApiError::internal)?;
    if let Err(e) = state.scheduler.destroy(&name).await {
        tracing::warn!(app.name = %app.id, error = %e, "Destroying containers failed");
    }
    logs::delete(&state, &app.id).await;
    let (domains, _) = state.db.domains(&app.id, i64::MAX, 0).await?;
    state.db.delete_app(&app.id).await?;
    let domains: Vec<String> = domains.into_iter().map(|d| d.domain).collect();
    state.mirror.app_deleted(&name, &domains).await;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let lines = query
        .get("log_lines")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1000);
    let follow = query
        .get("follow")
        .is_some_and(|f| matches!(f.as_str(), "true" | "1" | "yes"));
    if follow {
        return Ok(logs::follow(&state, &app.id, lines.min(1000)).await);
    }
    Ok(logs::query(&state, &app.id, lines).await)
}

/// The latest release and, if it has one, its build; 400 with `message` when it has none.
async fn built_release(
    state: &AppState,
    app: &App,
    message: &str,
) -> ApiResult<(crate::db::Release, crate::db::Build)> {
    let latest = state
        .db
        .latest_release(&app.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let build = match &latest.build {
        Some(uuid) => state.db.build(uuid).await?,
        None => None,
    };
    let build = build.ok_or_else(|| ApiError::bad_request(message))?;
    Ok((latest, build))
}

pub(crate) async fn run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let command = required(&body, "command")?;
    let (latest, build) = built_release(
        &state,
        &app,
        "No build associated with this release to run this command",
    )
    .await?;
    let config = state
        .db
        .config(&latest.config)
        .await?
        .ok_or(ApiError::NotFound)?;
    let name: AppName = app.id.parse().map_err(ApiError::internal)?;
    let procfile = crate::db::json_map(&build.procfile)?;
    let spec = release::spec(&name, &latest, &build, &config, &procfile)?;
    event(
        &state,
        &app.id,
        &format!("{} runs '{command}'", caller.username),
    );
    let (code, output) = state
        .scheduler
        .run(&name, &spec, &command)
        .await
        .map_err(|source| ReleaseError::Scheduler {
            app: app.id.clone(),
            source,
        })?;
    Ok(Json(json!([code, output])))
}

fn container_name(c: &Container) -> Option<ContainerName> {
    Some(ContainerName {
        app: c.app.parse().ok()?,
        version: ReleaseVersion(u32::try_from(c.release_version).ok()?),
        process_type: c.ptype.parse::<ProcessType>().ok()?,
        num: u32::try_from(c.num).ok()?,
    })
}

/// The containers as JSON, with their live state from the scheduler.
async fn render_containers(state: &AppState, app: &App, rows: &[Container]) -> Vec<Value> {
    let names: Vec<ContainerName> = rows.iter().filter_map(container_name).collect();
    let states = state.scheduler.states(&names).await;
    let unknown = deis_scheduler::ContainerStatus::from(deis_scheduler::ContainerState::Error);
    rows.iter()
        .zip(states.into_iter().chain(std::iter::repeat(unknown)))
        .map(|(c, s)| render::container(c, &app.owner, s.state.as_str(), s.restarts))
        .collect()
}

async fn select(
    state: &AppState,
    app: &App,
    ptype: Option<&str>,
    num: Option<&str>,
) -> ApiResult<Vec<Container>> {
    let rows = state.db.containers(&app.id, ptype).await?;
    Ok(match num {
        Some(n) => rows
            .into_iter()
            .filter(|c| c.num.to_string() == n)
            .collect(),
        None => rows,
    })
}

pub(crate) async fn containers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let rows: Vec<Container> = select(&state, &app, None, None)
        .await?
        .into_iter()
        .filter(|c| c.ptype != "run")
        .collect();
    paged(&state, &app, rows, &page).await
}

pub(crate) async fn containers_of_type(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, ptype)): Path<(String, String)>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let rows = select(&state, &app, Some(&ptype), None).await?;
    paged(&state, &app, rows, &page).await
}

async fn paged(
    state: &AppState,
    app: &App,
    rows: Vec<Container>,
    page: &Page,
) -> ApiResult<Json<Value>> {
    let count = rows.len() as i64;
    let start = usize::try_from(page.offset)
        .unwrap_or(usize::MAX)
        .min(rows.len());
    let end = usize::try_from(page.offset.saturating_add(page.limit))
        .unwrap_or(usize::MAX)
        .min(rows.len());
    let results = render_containers(state, app, &rows[start..end]).await;
    Ok(Json(page.envelope(count, results)))
}

pub(crate) async fn container(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, ptype, num)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let rows = select(&state, &app, Some(&ptype), Some(&num)).await?;
    let one = render_containers(&state, &app, &rows)
        .await
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    Ok(Json(one))
}

async fn restart(
    state: &AppState,
    caller: &crate::db::User,
    id: &str,
    ptype: Option<&str>,
    num: Option<&str>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(caller, id, Act::Change).await?;
    let rows = select(state, &app, ptype, num).await?;
    let names: Vec<ContainerName> = rows.iter().filter_map(container_name).collect();
    state
        .scheduler
        .restart(&names)
        .await
        .map_err(|source| ReleaseError::Scheduler {
            app: app.id.clone(),
            source,
        })?;
    Ok(Json(Value::Array(
        render_containers(state, &app, &rows).await,
    )))
}

pub(crate) async fn restart_all(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    restart(&state, &caller, &id, None, None).await
}

pub(crate) async fn restart_type(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, ptype)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    restart(&state, &caller, &id, Some(&ptype), None).await
}

pub(crate) async fn restart_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, ptype, num)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    restart(&state, &caller, &id, Some(&ptype), Some(&num)).await
}

/// A scale count: an integer or a numeric string, at least zero.
fn count(v: &Value) -> ApiResult<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid scaling format: invalid literal for int() with base 10: '{n}'"
            ))
        })?,
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid scaling format: invalid literal for int() with base 10: '{s}'"
            ))
        })?,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid scaling format: int() argument must be a string or a number, not '{}'",
                match other {
                    Value::Array(_) => "list",
                    Value::Object(_) => "dict",
                    Value::Bool(_) => "bool",
                    _ => "NoneType",
                }
            )));
        }
    };
    if n < 0 {
        return Err(ApiError::bad_request(
            "Invalid scaling format: Must be greater than or equal to zero",
        ));
    }
    Ok(n)
}

pub(crate) async fn scale(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let mut requested = BTreeMap::new();
    for (ptype, v) in &body {
        let n = count(v)?;
        if n > i64::from(state.limits.max_scale) {
            return Err(ApiError::bad_request(format!(
                "{ptype}={n} is above the platform's maximum of {} containers per process type",
                state.limits.max_scale
            )));
        }
        requested.insert(ptype.clone(), n);
    }
    let (_guard, app) = state.lock_app(&app).await?;
    let (latest, build) =
        built_release(&state, &app, "No build associated with this release").await?;
    let procfile = crate::db::json_map(&build.procfile)?;
    for ptype in requested.keys() {
        if ptype != "cmd" && !procfile.contains_key(ptype) {
            return Err(ApiError::bad_request(format!(
                "Container type {ptype} does not exist in application"
            )));
        }
        if ptype.parse::<ProcessType>().is_err() {
            return Err(ApiError::bad_request(format!(
                "Container type {ptype} does not exist in application"
            )));
        }
    }
    let mut structure = release::structure(&app)?;
    structure.extend(requested.iter().map(|(k, v)| (k.clone(), *v)));
    release::deploy(&state, &app, &latest, Some(structure)).await?;
    let pairs: Vec<String> = requested.iter().map(|(k, v)| format!("{k}={v}")).collect();
    event(
        &state,
        &app.id,
        &format!("{} scaled containers {}", caller.username, pairs.join(" ")),
    );
    Ok(StatusCode::NO_CONTENT)
}
