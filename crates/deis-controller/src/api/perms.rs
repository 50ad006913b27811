//! Administrators (§4.4), collaborators (§4.14) and the builder's hooks (§4.13).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::auth::{required, text};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller, MaybeCaller};
use super::page::Page;
use super::{AppState, render};
use crate::db::{App, User};
use crate::domain::access::Act;
use crate::domain::release::event;
use crate::time;

fn admin_only(caller: &User) -> ApiResult<()> {
    if caller.is_superuser {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

pub(crate) async fn admins(
    State(state): State<AppState>,
    Caller(caller): Caller,
    page: Page,
) -> ApiResult<Json<Value>> {
    admin_only(&caller)?;
    let (rows, count) = state.db.admins(page.limit, page.offset).await?;
    let results = rows
        .iter()
        .map(|u| json!({"username": u.username, "is_superuser": u.is_superuser}))
        .collect();
    Ok(Json(page.envelope(count, results)))
}

pub(crate) async fn grant_admin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    let name = required(&body, "username")?;
    let user = state.db.user(&name).await?.ok_or(ApiError::NotFound)?;
    state.db.set_superuser(&user.username, true).await?;
    Ok(StatusCode::CREATED)
}

pub(crate) async fn revoke_admin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    let user = state.db.user(&name).await?.ok_or(ApiError::NotFound)?;
    if !state.db.revoke_superuser(&user.username).await? {
        return Err(super::auth::last_admin(&user.username));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn collaborators(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    Ok(Json(
        json!({ "users": state.db.collaborators(&app.id).await? }),
    ))
}

pub(crate) async fn share(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    if !(caller.is_superuser || app.owner == caller.username) {
        return Err(ApiError::Forbidden);
    }
    let name = required(&body, "username")?;
    let user = state.db.user(&name).await?.ok_or(ApiError::NotFound)?;
    state.db.grant(&app.id, &user.username).await?;
    event(
        &state,
        &app.id,
        &format!("User {} was granted access to {}", user.username, app.id),
    );
    Ok(StatusCode::CREATED)
}

pub(crate) async fn unshare(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = state.db.app(&id).await?.ok_or(ApiError::NotFound)?;
    let user = state.db.user(&name).await?.ok_or(ApiError::NotFound)?;
    if !state.db.is_collaborator(&app.id, &user.username).await? {
        return Err(ApiError::Forbidden);
    }
    let allowed =
        caller.is_superuser || app.owner == caller.username || caller.username == user.username;
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    state.db.revoke(&app.id, &user.username).await?;
    event(
        &state,
        &app.id,
        &format!("User {} was revoked access to {}", user.username, app.id),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The builder's key check and the hook's user and app (§4.13).
async fn hook_target(
    state: &AppState,
    caller: Option<User>,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> ApiResult<(User, App)> {
    let sent = headers
        .get("x-deis-builder-auth")
        .map(|v| v.as_bytes().to_vec());
    let expected = state.builder_key().await;
    let valid = match (&sent, &expected) {
        (Some(s), Some(e)) => bool::from(s.as_slice().ct_eq(e.as_bytes())),
        _ => false,
    };
    if !valid {
        return Err(if sent.is_none() && caller.is_none() {
            ApiError::Unauthenticated
        } else {
            ApiError::Forbidden
        });
    }
    let username = required(body, "receive_user")?;
    let repo = required(body, "receive_repo")?;
    Ok(state.user_and_app(&username, &repo, Act::Change).await?)
}

pub(crate) async fn hook_push(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Response> {
    let (user, app) = hook_target(&state, caller, &headers, &body).await?;
    let uuid = time::new_uuid();
    let now = time::now();
    let field = |f: &str| text(&body, f).map(Option::unwrap_or_default);
    let (sha, fingerprint, connection, command) = (
        field("sha")?,
        field("fingerprint")?,
        field("ssh_connection")?,
        field("ssh_original_command")?,
    );
    state
        .db
        .insert_push(
            &uuid,
            &user.username,
            &app.id,
            &sha,
            &fingerprint,
            &connection,
            &command,
            now,
        )
        .await?;
    let push = json!({
        "uuid": uuid, "owner": user.username, "app": app.id, "sha": sha, "fingerprint": fingerprint,
        "receive_user": user.username, "receive_repo": app.id, "ssh_connection": connection,
        "ssh_original_command": command, "created": time::deis(now), "updated": time::deis(now),
    });
    Ok((StatusCode::CREATED, Json(push)).into_response())
}

pub(crate) async fn hook_build(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let (user, app) = hook_target(&state, caller, &headers, &body).await?;
    let build = super::builds::new_build(&body)?;
    let (_, release) = crate::domain::build::create(&state, &app, &user, build).await?;
    let domain = state.domain().await;
    Ok(Json(
        json!({"release": {"version": release.version}, "domains": [format!("{}.{domain}", app.id)]}),
    ))
}

pub(crate) async fn hook_config(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let (_, app) = hook_target(&state, caller, &headers, &body).await?;
    let (_, config) = state.current_config(&app).await?;
    Ok(Json(render::config(&config)?))
}
