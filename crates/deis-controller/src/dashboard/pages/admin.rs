//! For administrators: the users, and who is an administrator (grant, revoke). Anyone else gets
//! the API's refusal.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

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
    let token = Some(signed.token());
    let users = rest::call(
        &dash.rest,
        via,
        Method::GET,
        "/v1/users?page_size=1000",
        token,
        None,
    )
    .await;
    if !users.ok() {
        return error_page(users.status, &users.error(), Some(&signed.viewer()));
    }
    let admins = rest::call(
        &dash.rest,
        via,
        Method::GET,
        "/v1/admin/perms?page_size=1000",
        token,
        None,
    )
    .await;
    let admin_names: Vec<&str> = admins
        .results()
        .iter()
        .filter_map(|a| a["username"].as_str())
        .collect();
    let body = html! {
        h1 { "Users and administrators" }
        (alert(error))
        div class="scroll" {
            table id="users" {
                thead { tr { th scope="col" { "User" } th scope="col" { "Email" } th scope="col" { "Joined" } th scope="col" { "Administrator" } } }
                tbody {
                    @for u in users.results() {
                        @let name = u["username"].as_str().unwrap_or_default();
                        @let admin = admin_names.contains(&name);
                        tr {
                            th scope="row" { (name) }
                            td { (u["email"].as_str().unwrap_or_default()) }
                            td { (u["date_joined"].as_str().unwrap_or_default()) }
                            td {
                                form class="inline" method="post" action="/admin" {
                                    (csrf_field(&signed.csrf))
                                    input type="hidden" name="username" value=(name);
                                    @if admin {
                                        "yes "
                                        input type="hidden" name="action" value="revoke";
                                        button type="submit" aria-label={ "Revoke " (name) "'s administrator rights" } { "Revoke" }
                                    } @else {
                                        "no "
                                        input type="hidden" name="action" value="grant";
                                        button type="submit" aria-label={ "Make " (name) " an administrator" } { "Make administrator" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(status, layout("Users", Some(&signed.viewer()), None, body))
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
    let user = form.get("username");
    let (method, path, body): (Method, String, Option<Value>) = match form.get("action") {
        "grant" => (
            Method::POST,
            "/v1/admin/perms".to_owned(),
            Some(json!({"username": user})),
        ),
        "revoke" => (
            Method::DELETE,
            format!("/v1/admin/perms/{}", seg(user)),
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
        return see_other("/admin");
    }
    page(&dash, &signed, &via, Some(&reply.error()), reply.status).await
}
