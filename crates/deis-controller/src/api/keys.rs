//! Custom domains (§4.10), SSH keys (§4.12) and certificates (§4.11).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::required;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller};
use super::page::Page;
use super::{AppState, render};
use crate::db::{Cert, Domain, SshKey};
use crate::domain::access::{AccessError, Act};
use crate::domain::release::event;
use crate::domain::validate;
use crate::time;
use deis_types::Code;

pub(crate) async fn domains(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    page: Page,
) -> ApiResult<Json<Value>> {
    let app = state.app_for(&caller, &id, Act::Read).await?;
    let (rows, count) = state.db.domains(&app.id, page.limit, page.offset).await?;
    Ok(Json(page.envelope(
        count,
        rows.iter().map(render::domain).collect(),
    )))
}

pub(crate) async fn add_domain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Response> {
    let app = state.app_for(&caller, &id, Act::Change).await?;
    let requested = required(&body, "domain")?;
    let name = validate::domain(&requested)?;
    let platform = state.domain().await;
    if validate::is_platform_name(&name, &platform) && !caller.is_superuser {
        return Err(ApiError::field(
            "domain",
            format!(
                "The domain {name} is the platform's ({platform} and the names under it belong to the controller and the apps); only an administrator may add it"
            ),
        ));
    }
    let in_use = || {
        ApiError::field(
            "domain",
            format!("The domain {name} is already in use by another app"),
        )
    };
    if state.db.domain(&name).await?.is_some() {
        return Err(in_use());
    }
    let now = time::now();
    let domain = Domain {
        domain: name.clone(),
        owner: caller.username.clone(),
        app: app.id.clone(),
        created: now,
        updated: now,
    };
    match state.db.insert_domain(&domain).await {
        Err(e) if e.is_unique_violation() => return Err(in_use()),
        other => other?,
    }
    state.mirror.domain_saved(&name, &app.id).await;
    event(&state, &app.id, &format!("domain {name} added"));
    Ok((StatusCode::CREATED, Json(render::domain(&domain))).into_response())
}

pub(crate) async fn remove_domain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = state.app_for(&caller, &id, Act::Delete).await?;
    let domain = state
        .db
        .domain(&name.to_ascii_lowercase())
        .await?
        .filter(|d| d.app == app.id)
        .ok_or(ApiError::NotFound)?;
    state.db.delete_domain(&domain.domain).await?;
    state.mirror.domain_deleted(&domain.domain).await;
    event(
        &state,
        &app.id,
        &format!("domain {} removed", domain.domain),
    );
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    page: Page,
) -> ApiResult<Json<Value>> {
    let (rows, count) = state
        .db
        .keys(&caller.username, page.limit, page.offset)
        .await?;
    Ok(Json(
        page.envelope(count, rows.iter().map(render::key).collect()),
    ))
}

pub(crate) async fn add_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<Response> {
    let id = required(&body, "id")?;
    if id.chars().count() > 128 {
        return Err(ApiError::field(
            "id",
            "Ensure this field has no more than 128 characters.",
        ));
    }
    let public = required(&body, "public")?.trim().to_owned();
    let fingerprint = validate::key_fingerprint(&public)?;
    let unique = |field: &str| ApiError::field(field, "This field must be unique.");
    if state.db.key(&caller.username, &id).await?.is_some() {
        return Err(unique("id"));
    }
    if state.db.key_by_fingerprint(&fingerprint).await?.is_some() {
        return Err(unique("public"));
    }
    let now = time::now();
    let key = SshKey {
        uuid: time::new_uuid(),
        owner: caller.username.clone(),
        id,
        public,
        fingerprint,
        created: now,
        updated: now,
    };
    match state.db.insert_key(&key).await {
        Err(e) if e.is_unique_violation() => return Err(unique("public")),
        other => other?,
    }
    state
        .mirror
        .key_saved(&key.owner, &key.fingerprint, &key.public)
        .await;
    Ok((StatusCode::CREATED, Json(render::key(&key))).into_response())
}

pub(crate) async fn key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = state
        .db
        .key(&caller.username, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(render::key(&key)))
}

pub(crate) async fn remove_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let key = state
        .db
        .key(&caller.username, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.db.delete_key(&key.uuid).await?;
    state.mirror.key_deleted(&key.owner, &key.fingerprint).await;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn certs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    page: Page,
) -> ApiResult<Json<Value>> {
    let (rows, count) = state
        .db
        .certs(&caller.username, page.limit, page.offset)
        .await?;
    Ok(Json(
        page.envelope(count, rows.iter().map(render::cert).collect()),
    ))
}

pub(crate) async fn add_cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(body): Body,
) -> ApiResult<Response> {
    let certificate = required(&body, "certificate")?;
    let key = required(&body, "key")?;
    let info = validate::certificate(&certificate)?;
    let common_name = super::auth::text(&body, "common_name")?
        .filter(|cn| !cn.is_empty())
        .unwrap_or(info.common_name);
    if common_name.contains('*') {
        return Err(ApiError::field(
            "common_name",
            "Wildcard certificates are not supported",
        ));
    }
    if common_name.is_empty() || common_name.contains('/') {
        return Err(ApiError::field(
            "common_name",
            "The certificate has no usable common name",
        ));
    }
    let common_name = common_name.to_ascii_lowercase();
    if !info.names.contains(&common_name) {
        return Err(ApiError::field(
            "common_name",
            format!(
                "The certificate is not valid for {common_name} (it names {})",
                info.names.join(", ")
            ),
        ));
    }
    validate::key_matches(&certificate, &key)?;
    if !caller.is_superuser {
        for name in &info.names {
            may_serve(&state, &caller, name).await?;
        }
    }
    if let Some(existing) = state.db.cert(&common_name).await? {
        // A certificate whose owner no longer has the name (the domain was removed or went
        // to another app) gives way to the name's current holder; any other stays.
        let holder = state.db.user(&existing.owner).await?;
        let stale = match &holder {
            Some(owner) if owner.is_superuser => false,
            Some(owner) => match may_serve(&state, owner, &common_name).await {
                Ok(()) => false,
                Err(ApiError::Detail(Code::PermissionDenied, _)) => true,
                Err(e) => return Err(e),
            },
            None => true,
        };
        if !stale || caller.username == existing.owner {
            return Err(ApiError::field("common_name", "This field must be unique."));
        }
        state.db.delete_cert(&existing.common_name).await?;
        state.mirror.cert_deleted(&existing.common_name).await;
    }
    let now = time::now();
    let cert = Cert {
        id: 0,
        owner: caller.username.clone(),
        certificate,
        cert_key: key,
        common_name,
        expires: info.expires_micros,
        created: now,
        updated: now,
    };
    let cert = match state.db.insert_cert(&cert).await {
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::field("common_name", "This field must be unique."));
        }
        other => other?,
    };
    state
        .mirror
        .cert_saved(&cert.common_name, &cert.certificate, &cert.cert_key)
        .await;
    Ok((StatusCode::CREATED, Json(render::cert(&cert))).into_response())
}

/// Refuses a certificate name that is not a custom domain of an app the caller may change: a
/// certificate would otherwise let one tenant answer HTTPS for another's name.
async fn may_serve(state: &AppState, caller: &crate::db::User, name: &str) -> ApiResult<()> {
    let refused = || {
        ApiError::Detail(
            Code::PermissionDenied,
            format!(
                "The certificate names {name}, which is not a custom domain of an app of yours; add it first with deis domains:add {name}"
            ),
        )
    };
    let domain = state.db.domain(name).await?.ok_or_else(refused)?;
    match state.app_for(caller, &domain.app, Act::Change).await {
        Ok(_) => Ok(()),
        Err(AccessError::Forbidden { .. } | AccessError::NoApp { .. }) => Err(refused()),
        Err(e) => Err(e.into()),
    }
}

/// A certificate the caller owns (or any, for an admin).
async fn own_cert(state: &AppState, caller: &crate::db::User, cn: &str) -> ApiResult<Cert> {
    let cert = state.db.cert(cn).await?.ok_or(ApiError::NotFound)?;
    if cert.owner != caller.username && !caller.is_superuser {
        return Err(ApiError::Forbidden);
    }
    Ok(cert)
}

pub(crate) async fn cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(cn): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(render::cert(&own_cert(&state, &caller, &cn).await?)))
}

pub(crate) async fn remove_cert(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(cn): Path<String>,
) -> ApiResult<StatusCode> {
    let cert = own_cert(&state, &caller, &cn).await?;
    state.db.delete_cert(&cert.common_name).await?;
    state.mirror.cert_deleted(&cert.common_name).await;
    Ok(StatusCode::NO_CONTENT)
}
