//! The user's SSH keys (what `git push` authenticates with): listed, added, removed.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde_json::json;

use super::form::{Refusal, Request, name_in, request, submit_to_page};
use crate::dashboard::csrf::Posted;
use crate::dashboard::rest::Via;
use crate::dashboard::session::Signed;
use crate::dashboard::view::{alert, csrf_field, error_page, layout, respond};
use crate::dashboard::{Dash, Fields};

async fn page(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let reply = dash.client(signed, via).get("/v1/keys").await;
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

/// The REST request of the keys page's form.
fn translate(form: &Fields) -> Result<Request, Refusal> {
    let public = form.get("public");
    Ok(match form.get("action") {
        "add" => {
            // As `deis keys:add`: the name defaults to the key's comment.
            let id = match form.get("id") {
                "" => public.split_whitespace().nth(2).unwrap_or_default(),
                id => id,
            };
            let body = json!({"id": id, "public": public});
            request("keys", Method::POST, "/v1/keys".to_owned(), Some(body))
        }
        "remove" => {
            let id = name_in("keys", "key", form.get("id"))?;
            request("keys", Method::DELETE, format!("/v1/keys/{id}"), None)
        }
        _ => return Err(Refusal::NoSuchAction),
    })
}

pub(crate) async fn act(
    State(dash): State<Dash>,
    via: Via,
    Posted { signed, form }: Posted,
) -> Response {
    submit_to_page(&dash, &signed, &via, translate(&form), "/keys", page).await
}
