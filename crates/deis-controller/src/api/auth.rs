//! Accounts (§4.3, §4.4): register, login, cancel, passwd, token rotation, the user list, and
//! the authenticated root used by clients to recognise a controller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller, ClientAddr, MaybeCaller, token_hash};
use super::page::Page;
use super::{AppState, render};
use crate::db::User;
use crate::{passwords, time};
use axum::extract::State;
use deis_types::Code;

/// A string field: `Ok(None)` when absent or null, 400 when of another type.
pub(crate) fn text(body: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(field, "Not a valid string.")),
    }
}

/// A required, non-blank string field.
pub(crate) fn required(body: &Map<String, Value>, field: &str) -> ApiResult<String> {
    match text(body, field)? {
        None => Err(ApiError::field(field, "This field is required.")),
        Some(s) if s.is_empty() => Err(ApiError::field(field, "This field may not be blank.")),
        Some(s) => Ok(s),
    }
}

pub(crate) async fn root(Caller(_): Caller) -> Json<Value> {
    Json(json!({}))
}

pub(crate) async fn register(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Body(body): Body,
) -> ApiResult<Response> {
    match state.setting("registrationMode").await.as_deref() {
        None | Some("enabled") => {}
        Some("disabled") => {
            return Err(ApiError::Detail(
                Code::PermissionDenied,
                "Registration is disabled".into(),
            ));
        }
        Some("admin_only") if caller.as_ref().is_some_and(|c| c.is_superuser) => {}
        Some("admin_only") => return Err(ApiError::Forbidden),
        Some(other) => {
            return Err(ApiError::internal(format!(
                "unknown registrationMode {other:?}"
            )));
        }
    }
    let username = required(&body, "username")?;
    crate::domain::validate::username(&username)?;
    let password = required(&body, "password")?;
    let email = text(&body, "email")?.unwrap_or_default();
    if state.db.user(&username).await?.is_some() {
        return Err(ApiError::field("username", "This field must be unique."));
    }
    let now = time::now();
    let token = passwords::new_token();
    let user = User {
        username,
        password: passwords::hash(&password)
            .await
            .map_err(ApiError::internal)?,
        email,
        first_name: text(&body, "first_name")?.unwrap_or_default(),
        last_name: text(&body, "last_name")?.unwrap_or_default(),
        is_superuser: false,
        is_active: true,
        token_hash: token_hash(&token),
        token,
        last_login: Some(now),
        date_joined: now,
    };
    let user = match state.db.insert_user(&user).await {
        Ok(u) => u,
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::field("username", "This field must be unique."));
        }
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(render::user(&user))).into_response())
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let username = required(&body, "username")?;
    let password = required(&body, "password")?;
    if let Err(wait) = state.login_limits.attempt(&username, &client) {
        return Err(ApiError::TooMany(
            wait,
            format!(
                "Too many failed logins for {username} or from {client}; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let rejected = || {
        ApiError::Fields(
            [(
                "non_field_errors".to_owned(),
                vec!["Unable to log in with provided credentials.".to_owned()],
            )]
            .into(),
        )
    };
    let Some(user) = state.db.user(&username).await? else {
        // Spend the same time as a real check so that timing does not reveal user names.
        let _ = passwords::verify(&password, passwords::DUMMY_HASH).await;
        return Err(rejected());
    };
    if !passwords::verify(&password, &user.password).await {
        return Err(rejected());
    }
    state.login_limits.succeeded(&username, &client);
    if !user.is_active {
        return Err(ApiError::Fields(
            [(
                "non_field_errors".to_owned(),
                vec!["User account is disabled.".to_owned()],
            )]
            .into(),
        ));
    }
    state.db.set_last_login(&user.username, time::now()).await?;
    Ok(Json(json!({ "token": user.token })))
}

/// The user a request names in `username`, or the caller; others need admin.
async fn target(state: &AppState, caller: &User, body: &Map<String, Value>) -> ApiResult<User> {
    match text(body, "username")? {
        Some(name) if name != caller.username => {
            if !caller.is_superuser {
                return Err(ApiError::Forbidden);
            }
            state.db.user(&name).await?.ok_or(ApiError::NotFound)
        }
        _ => Ok(caller.clone()),
    }
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    let user = target(&state, &caller, &body).await?;
    if state.db.apps_owned_by(&user.username).await? > 0 {
        return Err(ApiError::Detail(
            Code::Conflict,
            format!(
                "{} still has applications assigned. Delete or transfer ownership",
                user.username
            ),
        ));
    }
    if !state.db.delete_user(&user.username).await? {
        return Err(last_admin(&user.username));
    }
    state.mirror.user_deleted(&user.username).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The refusal to leave the platform without an administrator.
pub(crate) fn last_admin(username: &str) -> ApiError {
    ApiError::Detail(
        Code::Conflict,
        format!(
            "{username} is the last administrator; make another user an administrator first (deis perms:create <user> --admin)"
        ),
    )
}

pub(crate) async fn passwd(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let user = target(&state, &caller, &body).await?;
    let current = text(&body, "password")?;
    let new = required(&body, "new_password")?;
    if current.is_some() || !caller.is_superuser {
        let current =
            current.ok_or_else(|| ApiError::field("password", "This field is required."))?;
        if !passwords::verify(&current, &user.password).await {
            return Err(ApiError::bad_request("Current password does not match"));
        }
    }
    state
        .db
        .set_password(
            &user.username,
            &passwords::hash(&new).await.map_err(ApiError::internal)?,
        )
        .await?;
    Ok(Json(json!({"status": "password set"})))
}

pub(crate) async fn tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let rotate = |user: String| {
        let state = state.clone();
        async move {
            let token = passwords::new_token();
            state
                .db
                .set_token(&user, &token, &token_hash(&token))
                .await?;
            Ok::<_, ApiError>(token)
        }
    };
    if body.contains_key("all") {
        if !caller.is_superuser {
            return Err(ApiError::Forbidden);
        }
        for user in state.db.all_usernames().await? {
            rotate(user).await?;
        }
        return Ok(Json(json!("")));
    }
    if body.contains_key("username") {
        if !caller.is_superuser {
            return Err(ApiError::Forbidden);
        }
        let name = required(&body, "username")?;
        let user = state.db.user(&name).await?.ok_or(ApiError::NotFound)?;
        return Ok(Json(json!({ "token": rotate(user.username).await? })));
    }
    Ok(Json(json!({ "token": rotate(caller.username).await? })))
}

pub(crate) async fn users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    page: Page,
) -> ApiResult<Json<Value>> {
    if !caller.is_superuser {
        return Err(ApiError::Forbidden);
    }
    let (rows, count) = state.db.users(page.limit, page.offset).await?;
    Ok(Json(
        page.envelope(count, rows.iter().map(render::user).collect()),
    ))
}
