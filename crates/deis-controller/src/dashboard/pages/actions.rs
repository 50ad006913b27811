//! The app page's forms: each becomes the REST request the `deis` client sends for the same
//! change ([`super::form`] sends it and answers).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::app::render;
use super::form::{Refusal, Request, name_in, request, submit};
use crate::dashboard::csrf::Posted;
use crate::dashboard::rest::{Via, app_path, encode};
use crate::dashboard::view::not_a_name;
use crate::dashboard::{Dash, Fields};

/// The REST request of `action` for the app at `base` (`/v1/apps/{app}`) with the form's
/// fields, or why there is none.
fn translate(base: &str, action: &str, form: &Fields) -> Result<Request, Refusal> {
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
                Refusal::Form(
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
                t => format!(
                    "{base}/containers/{}/restart",
                    name_in("processes", "process type", t)?
                ),
            };
            request("processes", Method::POST, path, None)
        }
        "rollback" => {
            let version: i64 = form
                .get("version")
                .trim_start_matches('v')
                .parse()
                .map_err(|_| {
                    Refusal::Form(
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
                _ => {
                    let message = "Choose memory, CPU shares or a tag".to_owned();
                    return Err(Refusal::Form("limits", message));
                }
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
            format!(
                "{base}/domains/{}",
                name_in("domains", "domain", form.get("domain"))?
            ),
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
            format!(
                "/v1/certs/{}",
                name_in("domains", "certificate", form.get("common_name"))?
            ),
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
            format!(
                "{base}/perms/{}",
                name_in("collaborators", "user", form.get("username"))?
            ),
            None,
        ),
        _ => return Err(Refusal::NoSuchAction),
    })
}

pub(crate) async fn act(
    State(dash): State<Dash>,
    via: Via,
    Path((app, action)): Path<(String, String)>,
    Posted { signed, form }: Posted,
) -> Response {
    let base = match app_path(&app) {
        Ok(base) => base,
        Err(bad) => return not_a_name(&bad, &signed.viewer()),
    };
    let asked = translate(&base, &action, &form);
    let back = |section: &str| format!("/apps/{}#{section}", encode(&app));
    let page =
        async |problem, status| render(&dash, &signed, &via, &app, Some(problem), status).await;
    submit(&dash, &signed, &via, asked, back, page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Fields {
        Fields(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The path `action` with `fields` would request, or its refusal.
    fn check(action: &str, fields: &[(&str, &str)], expect: Result<&str, Refusal>) {
        let got = translate("/v1/apps/garden", action, &form(fields)).map(|r| r.path);
        assert_eq!(
            got.as_deref(),
            expect.as_ref().copied(),
            "{action} {fields:?}"
        );
    }

    #[test]
    fn a_name_that_would_be_another_path_is_refused_in_its_section() {
        check(
            "domain-remove",
            &[("domain", "www.example.com")],
            Ok("/v1/apps/garden/domains/www.example.com"),
        );
        let empty = "The domain name is empty; fill it in and try again".to_owned();
        check("domain-remove", &[], Err(Refusal::Form("domains", empty)));
        let dots = |what: &str, name: &str| {
            format!("\"{name}\" is not a valid {what} name: a name cannot be \".\" or \"..\"")
        };
        check(
            "domain-remove",
            &[("domain", "..")],
            Err(Refusal::Form("domains", dots("domain", ".."))),
        );
        check(
            "cert-remove",
            &[("common_name", ".")],
            Err(Refusal::Form("domains", dots("certificate", "."))),
        );
        check(
            "perm-remove",
            &[("username", " .. ")],
            Err(Refusal::Form("collaborators", dots("user", ".."))),
        );
        check(
            "restart",
            &[("type", "..")],
            Err(Refusal::Form("processes", dots("process type", ".."))),
        );
        // No type restarts every process, as `deis ps:restart` does.
        check("restart", &[], Ok("/v1/apps/garden/containers/restart"));
    }

    #[test]
    fn an_unknown_action_is_no_such_action() {
        check("explode", &[], Err(Refusal::NoSuchAction));
    }
}
