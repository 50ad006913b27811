//! Config (§4.6), builds (§4.7) and releases (§4.8): every change here is a new release.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::{required, text};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller};
use super::page::Page;
use super::{AppState, render};
use crate::db::{App, Config};
use crate::domain::access::Act;
use crate::domain::build::{self, NewBuild};
use crate::domain::config::{Maps, merge, parse_change};
use crate::domain::release::{self, Change};
use crate::time;

fn release_headers(version: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
        headers.insert("deis-release", v.clone());
        headers.insert("x-deis-release", v);
    }
    headers
}

pub(crate) async fn config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let (_, config) = state.current_config(&app).await?;
    Ok(Json(render::config(&config)?))
}

/// Refuses memory and CPU limits above the operator's maxima.
fn within_limits(
    state: &AppState,
    changes: &[(&'static str, Map<String, Value>)],
) -> ApiResult<()> {
    for (field, values) in changes {
        for (ptype, value) in values {
            let refusal = match (*field, value) {
                ("memory", Value::String(limit)) => state.limits.memory_refusal(ptype, limit),
                ("cpu", Value::Number(n))
                    if n.as_u64()
                        .is_some_and(|c| c > u64::from(state.limits.max_cpu)) =>
                {
                    Some(format!(
                        "{ptype}={n} is above the platform's maximum of {} CPU shares",
                        state.limits.max_cpu
                    ))
                }
                _ => None,
            };
            if let Some(message) = refusal {
                return Err(ApiError::field(field, message));
            }
        }
    }
    Ok(())
}

/// Applies a config change to `app` as `actor`: the new config and its release. Shared with the
/// builder's API.
pub(crate) async fn change_config(
    state: &AppState,
    app: &App,
    actor: &str,
    body: &Map<String, Value>,
) -> ApiResult<(Config, crate::db::Release)> {
    let changes = parse_change(body)?;
    within_limits(state, &changes)?;
    let (_guard, app) = state.lock_app(app).await?;
    let (_, current) = state.current_config(&app).await?;
    // Merged onto the current release's config, so a change after a rollback builds on what
    // runs (Deis merged onto the newest config row, re-applying rolled-back values).
    let merged = merge(&Maps::from_row(&current)?, &changes);
    let now = time::now();
    let text = |m: &Map<String, Value>| serde_json::to_string(m).map_err(ApiError::internal);
    let config = Config {
        uuid: time::new_uuid(),
        owner: actor.to_owned(),
        app: app.id.clone(),
        config_values: text(&merged.values)?,
        memory: text(&merged.memory)?,
        cpu: text(&merged.cpu)?,
        tags: text(&merged.tags)?,
        created: now,
        updated: now,
    };
    let release = release::create(
        state,
        &app,
        actor,
        Change {
            config: Some(config.clone()),
            ..Change::default()
        },
    )
    .await?;
    Ok((config, release))
}

pub(crate) async fn set_config(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Response> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let (config, release) = change_config(&state, &app, &caller.username, &body).await?;
    let mut rendered = render::config(&config)?;
    if release.build.is_some()
        && let Some(values) = rendered.get_mut("values").and_then(Value::as_object_mut)
    {
        values.insert("DEIS_APP".into(), json!(app.id));
        values.insert(
            "DEIS_RELEASE".into(),
            json!(format!("v{}", release.version)),
        );
    }
    Ok((
        StatusCode::CREATED,
        release_headers(release.version),
        Json(rendered),
    )
        .into_response())
}

pub(crate) async fn builds(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let (rows, count) = state.db.builds(&app.id, page.limit, page.offset).await?;
    let results = rows.iter().map(render::build).collect::<Result<_, _>>()?;
    Ok(Json(page.envelope(count, results)))
}

pub(crate) async fn build(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, uuid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let build = state
        .db
        .build(&uuid)
        .await?
        .filter(|b| b.app == app.id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(render::build(&build)?))
}

/// The procfile of a build request: an object of strings, or a string holding one.
fn procfile(body: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let value = match body.get("procfile") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Map::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|_| ApiError::field("procfile", "Value must be a JSON object"))?,
        Some(v) => v.clone(),
    };
    match value {
        Value::Object(m) if m.values().all(Value::is_string) => Ok(m),
        _ => Err(ApiError::field(
            "procfile",
            "Value must be a JSON object of process types to commands",
        )),
    }
}

/// The build a request asks for (the fields' types; their values are the rules' to check).
pub(crate) fn new_build(body: &Map<String, Value>) -> ApiResult<NewBuild> {
    let image = required(body, "image")?;
    let sha = text(body, "sha")?.unwrap_or_default();
    let dockerfile = match body.get("dockerfile") {
        Some(Value::Bool(true)) => "true".to_owned(),
        _ => text(body, "dockerfile")
            .unwrap_or_default()
            .unwrap_or_default(),
    };
    Ok(NewBuild {
        image,
        sha,
        procfile: procfile(body)?,
        dockerfile,
    })
}

pub(crate) async fn create_build(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Response> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let (build, release) = build::create(&state, &app, &caller, new_build(&body)?).await?;
    Ok((
        StatusCode::CREATED,
        release_headers(release.version),
        Json(render::build(&build)?),
    )
        .into_response())
}

pub(crate) async fn releases(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let (rows, count) = state.db.releases(&app.id, page.limit, page.offset).await?;
    Ok(Json(page.envelope(
        count,
        rows.iter().map(render::release).collect(),
    )))
}

pub(crate) async fn release(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let number = version
        .strip_prefix('v')
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or(ApiError::NotFound)?;
    let release = state
        .db
        .release(&app.id, number)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(render::release(&release)))
}

pub(crate) async fn rollback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Response> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let (_guard, app) = state.lock_app(&app).await?;
    let latest = state
        .db
        .latest_release(&app.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let target = match body.get("version") {
        None | Some(Value::Null) => latest.version - 1,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::field("version", "A valid integer is required."))?,
        Some(Value::String(s)) => s
            .trim_start_matches('v')
            .parse()
            .map_err(|_| ApiError::field("version", "A valid integer is required."))?,
        Some(_) => return Err(ApiError::field("version", "A valid integer is required.")),
    };
    if target < 1 {
        return Err(ApiError::bad_request("version cannot be below 0"));
    }
    let prev = state
        .db
        .release(&app.id, target)
        .await?
        .ok_or(ApiError::NotFound)?;
    let release = release::create(
        &state,
        &app,
        &caller.username,
        Change {
            reuse: Some((prev.config.clone(), prev.build.clone())),
            summary: Some(format!("{} rolled back to v{target}", caller.username)),
            ..Change::default()
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "version": release.version })),
    )
        .into_response())
}
