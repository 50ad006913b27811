//! The apps list (name, owner, URL, processes, last release) and the form that creates an app.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::dashboard::Dash;
use crate::dashboard::csrf::Posted;
use crate::dashboard::rest::{Via, encode};
use crate::dashboard::session::Signed;
use crate::dashboard::view::{alert, error_page, layout, respond, see_other};

/// An app's process counts as `web=3 worker=1`.
pub(crate) fn processes(structure: &Value) -> String {
    let counts: Vec<String> = structure
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    if counts.is_empty() {
        "none".to_owned()
    } else {
        counts.join(" ")
    }
}

/// An app's URL as a link target.
pub(crate) fn app_url(app: &Value) -> String {
    format!("http://{}/", app["url"].as_str().unwrap_or_default())
}

async fn page(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let api = dash.client(signed, via);
    let listed = api.get("/v1/apps").await;
    if !listed.ok() {
        return error_page(listed.status, &listed.error(), Some(&signed.viewer()));
    }
    let apps = listed.results().to_vec();
    let latest = futures_util::future::join_all(apps.iter().map(|app| {
        let path = format!(
            "/v1/apps/{}/releases?page_size=1",
            encode(app["id"].as_str().unwrap_or_default())
        );
        let api = &api;
        async move { api.get(&path).await.results().first().cloned() }
    }))
    .await;
    let body = html! {
        h1 { "Apps" }
        section aria-labelledby="create-heading" {
            h2 id="create-heading" { "Create an app" }
            (alert(error))
            form class="inline" method="post" action="/" {
                (crate::dashboard::view::csrf_field(&signed.csrf))
                label for="app-name" { "Name (empty for a generated one)" }
                input id="app-name" name="id" type="text" maxlength="64" pattern="[a-z0-9-]*";
                button type="submit" { "Create" }
            }
        }
        section aria-labelledby="list-heading" {
            h2 id="list-heading" { "Your apps" }
            @if apps.is_empty() {
                p { "No apps yet." }
            } @else {
                (table(&apps, &latest))
            }
        }
    };
    respond(status, layout("Apps", Some(&signed.viewer()), None, body))
}

fn table(apps: &[Value], latest: &[Option<Value>]) -> Markup {
    html! {
        div class="scroll" {
            table id="apps" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Owner" } th scope="col" { "URL" } th scope="col" { "Processes" } th scope="col" { "Last release" } } }
                tbody {
                    @for (app, release) in apps.iter().zip(latest) {
                        @let id = app["id"].as_str().unwrap_or_default();
                        tr {
                            th scope="row" { a href={ "/apps/" (encode(id)) } { (id) } }
                            td { (app["owner"].as_str().unwrap_or_default()) }
                            td { a href=(app_url(app)) { (app["url"].as_str().unwrap_or_default()) } }
                            td { (processes(&app["structure"])) }
                            td {
                                @if let Some(r) = release {
                                    "v" (r["version"]) " · " (r["summary"].as_str().unwrap_or_default()) " · " (r["created"].as_str().unwrap_or_default())
                                } @else { "none" }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn list(State(dash): State<Dash>, signed: Signed, via: Via) -> Response {
    page(&dash, &signed, &via, None, StatusCode::OK).await
}

/// Creates an app (`POST /v1/apps`) and opens its page.
pub(crate) async fn create(
    State(dash): State<Dash>,
    via: Via,
    Posted { signed, form }: Posted,
) -> Response {
    let name = form.get("id");
    let body = if name.is_empty() {
        json!({})
    } else {
        json!({ "id": name })
    };
    let api = dash.client(&signed, &via);
    let reply = api.call(Method::POST, "/v1/apps", Some(&body)).await;
    if !reply.ok() {
        return page(&dash, &signed, &via, Some(&reply.error()), reply.status).await;
    }
    let id = reply.json["id"].as_str().unwrap_or_default();
    see_other(&format!("/apps/{}", encode(id)))
}
