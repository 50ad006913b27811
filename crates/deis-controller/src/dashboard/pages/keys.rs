//! The user's SSH keys (what `git push` authenticates with): listed, added, removed.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde_json::json;

use crate::dashboard::rest::{self, Via, seg};
use crate::dashboard::session::Signed;
use crate::dashboard::view::{alert, csrf_field, error_page, layout, respond, see_other};
use crate::dashboard::{Dash, Fields, csrf};

async fn page(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let reply = rest::call(
        &dash.rest,
        via,
        Method::GET,
        "/v1/keys",
        Some(signed.token()),
        None,
    )
    .await;
    if !reply.ok() {
        return error_page(reply.status, &reply.error(), Some(&signed.viewer()));
    }
    let body = html! {
        h1 { "SSH keys" }
        (alert(error))
        @if reply.results().is_empty() { p { "No keys yet: add one to push with git." } }
        ul id="key-list" {
            @for k in reply.results() {
                @let id = k["id"].as_str().unwrap_or_default();
                li {
                    strong { (id) } " " code { (k["fingerprint"].as_str().unwrap_or_default()) } " "
                    form class="inline" method="post" action="/keys" {
                        (csrf_field(&signed.csrf))
                        input type="hidden" name="action" value="remove";
                        input type="hidden" name="id" value=(id);
                        button type="submit" aria-label={ "Remove " (id) } { "Remove" }
                    }
                }
            }
        }
        h2 { "Add a key" }
        form class="stack" method="post" action="/keys" {
            (csrf_field(&signed.csrf))
            input type="hidden" name="action" value="add";
            label for="key-id" { "Name (empty: the key's comment)" }
            input id="key-id" name="id" type="text" maxlength="128";
            label for="key-public" { "Public key (e.g. the contents of ~/.ssh/id_ed25519.pub)" }
            textarea id="key-public" name="public" rows="3" required {}
            button type="submit" { "Add key" }
        }
    };
    respond(
        status,
        layout("SSH keys", Some(&signed.viewer()), None, body),
    )
}

pub(crate) async fn show(State(dash): State<Dash>, signed: Signed, via: Via) -> Response {
    page(&dash, &signed, &via, None, StatusCode::OK).await
}

pub(crate) async fn act(
    State(dash): State<Dash>,
    signed: Signed,
    via: Via,
    form: Fields,
) -> Response {
    if let Some(refused) = csrf::refusal(&signed, &form.0) {
        return refused;
    }
    let public = form.get("public");
    let (method, path, body) = match form.get("action") {
        "add" => {
            // As `deis keys:add`: the name defaults to the key's comment.
            let id = match form.get("id") {
                "" => public.split_whitespace().nth(2).unwrap_or_default(),
                id => id,
            };
            (
                Method::POST,
                "/v1/keys".to_owned(),
                Some(json!({"id": id, "public": public})),
            )
        }
        "remove" => (
            Method::DELETE,
            format!("/v1/keys/{}", seg(form.get("id"))),
            None,
        ),
        _ => {
            return error_page(
                StatusCode::NOT_FOUND,
                "There is no such action",
                Some(&signed.viewer()),
            );
        }
    };
    let reply = rest::call(
        &dash.rest,
        &via,
        method,
        &path,
        Some(signed.token()),
        body.as_ref(),
    )
    .await;
    if reply.ok() {
        return see_other("/keys");
    }
    page(&dash, &signed, &via, Some(&reply.error()), reply.status).await
}
