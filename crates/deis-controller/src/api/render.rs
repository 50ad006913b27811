//! The JSON representations of the API's objects (§4).

use serde_json::{Value, json};

use crate::db::{
    App, Build, Cert, Config, Container, DbResult, Domain, Release, SshKey, User, json_map,
};
use crate::time::{deis, iso};

pub(crate) fn user(u: &User) -> Value {
    json!({
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "is_superuser": u.is_superuser,
        "is_staff": u.is_superuser,
        "groups": [],
        "user_permissions": [],
        "last_login": u.last_login.map(iso),
        "date_joined": iso(u.date_joined),
        "is_active": u.is_active,
    })
}

/// A JSON body already serialised, as `Json` would send it.
pub(crate) fn json_body(body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn app(a: &App, domain: &str) -> DbResult<Value> {
    Ok(json!({
        "uuid": a.uuid,
        "id": a.id,
        "owner": a.owner,
        "url": format!("{}.{domain}", a.id),
        "structure": json_map(&a.structure)?,
        "created": deis(a.created),
        "updated": deis(a.updated),
    }))
}

pub(crate) fn config(c: &Config) -> DbResult<Value> {
    Ok(json!({
        "uuid": c.uuid,
        "owner": c.owner,
        "app": c.app,
        "values": json_map(&c.config_values)?,
        "memory": json_map(&c.memory)?,
        "cpu": json_map(&c.cpu)?,
        "tags": json_map(&c.tags)?,
        "created": deis(c.created),
        "updated": deis(c.updated),
    }))
}

pub(crate) fn build(b: &Build) -> DbResult<Value> {
    Ok(json!({
        "uuid": b.uuid,
        "owner": b.owner,
        "app": b.app,
        "image": b.image,
        "sha": b.sha,
        "procfile": json_map(&b.procfile)?,
        "dockerfile": b.dockerfile,
        "created": deis(b.created),
        "updated": deis(b.updated),
    }))
}

pub(crate) fn release(r: &Release) -> Value {
    json!({
        "uuid": r.uuid,
        "app": r.app,
        "version": r.version,
        "owner": r.owner,
        "build": r.build,
        "config": r.config,
        "summary": r.summary,
        "created": deis(r.created),
        "updated": deis(r.updated),
    })
}

/// A container; `restarts` (how often the scheduler revived it) is ours, not Deis v1's.
pub(crate) fn container(c: &Container, owner: &str, state: &str, restarts: u32) -> Value {
    json!({
        "uuid": c.uuid,
        "owner": owner,
        "app": c.app,
        "release": format!("v{}", c.release_version),
        "type": c.ptype,
        "num": c.num,
        "state": state,
        "restarts": restarts,
        "created": deis(c.created),
        "updated": deis(c.updated),
    })
}

pub(crate) fn domain(d: &Domain) -> Value {
    json!({
        "owner": d.owner,
        "app": d.app,
        "domain": d.domain,
        "created": deis(d.created),
        "updated": deis(d.updated),
    })
}

pub(crate) fn cert(c: &Cert) -> Value {
    json!({
        "id": c.id,
        "owner": c.owner,
        "common_name": c.common_name,
        "expires": deis(c.expires),
        "created": deis(c.created),
        "updated": deis(c.updated),
    })
}

pub(crate) fn key(k: &SshKey) -> Value {
    json!({
        "uuid": k.uuid,
        "owner": k.owner,
        "id": k.id,
        "public": k.public,
        "fingerprint": k.fingerprint,
        "created": deis(k.created),
        "updated": deis(k.updated),
    })
}
