//! The app page's forms: each becomes the REST request the `deis` client sends for the same
//! change; on success the browser goes back to the page (`303`), on failure the page shows the
//! API's message in the form's section, with the API's status.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::app::{Problem, render};
use crate::dashboard::rest::{self, Via, seg};
use crate::dashboard::session::Signed;
use crate::dashboard::view::{error_page, see_other};
use crate::dashboard::{Dash, Fields, csrf};

/// A form's request: the section it belongs to, the method, the path under the app, the body.
struct Request {
    section: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn request(section: &'static str, method: Method, path: String, body: Option<Value>) -> Request {
    Request {
        section,
        method,
        path,
        body,
    }
}

/// The REST request of `action` with the form's fields, or what is wrong with the form.
fn translate(app: &str, action: &str, form: &Fields) -> Result<Request, (&'static str, String)> {
    let base = format!("/v1/apps/{}", seg(app));
    let unset = !form.get("unset").is_empty();
    let value = |v: &str| {
        if unset {
            Value::Null
        } else {
            Value::String(v.to_owned())
        }
    };
    Ok(match action {
        "deploy" => request(
            "deploy",
            Method::POST,
            format!("{base}/builds"),
            Some(json!({"image": form.get("image")})),
        ),
        "scale" => {
            let count: i64 = form.get("count").parse().map_err(|_| {
                (
                    "processes",
                    "The number of processes must be a whole number".to_owned(),
                )
            })?;
            let mut body = serde_json::Map::new();
            body.insert(form.get("type").to_owned(), json!(count));
            request(
                "processes",
                Method::POST,
                format!("{base}/scale"),
                Some(body.into()),
            )
        }
        "restart" => {
            let path = match form.get("type") {
                "" => format!("{base}/containers/restart"),
                t => format!("{base}/containers/{}/restart", seg(t)),
            };
            request("processes", Method::POST, path, None)
        }
        "rollback" => {
            let version: i64 = form
                .get("version")
                .trim_start_matches('v')
                .parse()
                .map_err(|_| {
                    (
                        "releases",
                        "The release to roll back to must be a number".to_owned(),
                    )
                })?;
            request(
                "releases",
                Method::POST,
                format!("{base}/releases/rollback"),
                Some(json!({ "version": version })),
            )
        }
        "config" => {
            let mut values = serde_json::Map::new();
            values.insert(
                form.get("key").to_owned(),
                value(form.0.get("value").map_or("", String::as_str)),
            );
            request(
                "config",
                Method::POST,
                format!("{base}/config"),
                Some(json!({ "values": values })),
            )
        }
        "limits" => {
            let kind = match form.get("kind") {
                k @ ("memory" | "cpu" | "tags") => k,
                _ => return Err(("limits", "Choose memory, CPU shares or a tag".to_owned())),
            };
            let mut values = serde_json::Map::new();
            values.insert(form.get("key").to_owned(), value(form.get("value")));
            let mut body = serde_json::Map::new();
            body.insert(kind.to_owned(), values.into());
            request(
                "limits",
                Method::POST,
                format!("{base}/config"),
                Some(body.into()),
            )
        }
        "domain-add" => request(
            "domains",
            Method::POST,
            format!("{base}/domains"),
            Some(json!({"domain": form.get("domain")})),
        ),
        "domain-remove" => request(
            "domains",
            Method::DELETE,
            format!("{base}/domains/{}", seg(form.get("domain"))),
            None,
        ),
        "cert-add" => request(
            "domains",
            Method::POST,
            "/v1/certs".to_owned(),
            Some(json!({"certificate": form.get("certificate"), "key": form.get("key")})),
        ),
        "cert-remove" => request(
            "domains",
            Method::DELETE,
            format!("/v1/certs/{}", seg(form.get("common_name"))),
            None,
        ),
        "perm-add" => request(
            "collaborators",
            Method::POST,
            format!("{base}/perms"),
            Some(json!({"username": form.get("username")})),
        ),
        "perm-remove" => request(
            "collaborators",
            Method::DELETE,
            format!("{base}/perms/{}", seg(form.get("username"))),
            None,
        ),
        _ => return Err(("", format!("There is no action {action:?}"))),
    })
}

pub(crate) async fn act(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    Path((app, action)): Path<(String, String)>,
    form: Fields,
) -> Response {
    if let Some(refused) = csrf::refusal(&signed, &form.0) {
        return refused;
    }
    let status_of = |section: &str| {
        if section.is_empty() {
            axum::http::StatusCode::NOT_FOUND
        } else {
            axum::http::StatusCode::BAD_REQUEST
        }
    };
    let req = match translate(&app, &action, &form) {
        Ok(r) => r,
        Err(("", message)) => {
            return error_page(status_of(""), &message, Some(&signed.viewer()));
        }
        Err((section, message)) => {
            let problem = Problem { section, message };
            return render(
                &dash,
                &signed,
                &via,
                &app,
                Some(problem),
                status_of(section),
            )
            .await;
        }
    };
    let token = Some(signed.token());
    let reply = rest::call(
        &dash.rest,
        &via,
        req.method,
        &req.path,
        token,
        req.body.as_ref(),
    )
    .await;
    if reply.ok() {
        return see_other(&format!("/apps/{}#{}", seg(&app), req.section));
    }
    let problem = Problem {
        section: req.section,
        message: reply.error(),
    };
    render(&dash, &signed, &via, &app, Some(problem), reply.status).await
}
