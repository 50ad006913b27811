//! For administrators: the users, and who is an administrator (grant, revoke). Anyone else gets
//! the API's refusal.

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
    let api = dash.client(signed, via);
    let users = api.get("/v1/users?page_size=1000").await;
    if !users.ok() {
        return error_page(users.status, &users.error(), Some(&signed.viewer()));
    }
    let admins = api.get("/v1/admin/perms?page_size=1000").await;
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

/// The REST request of the users page's form.
fn translate(form: &Fields) -> Result<Request, Refusal> {
    let user = form.get("username");
    Ok(match form.get("action") {
        "grant" => {
            let body = json!({"username": user});
            request(
                "users",
                Method::POST,
                "/v1/admin/perms".to_owned(),
                Some(body),
            )
        }
        "revoke" => {
            let user = name_in("users", "user", user)?;
            let path = format!("/v1/admin/perms/{user}");
            request("users", Method::DELETE, path, None)
        }
        _ => return Err(Refusal::NoSuchAction),
    })
}

pub(crate) async fn act(
    State(dash): State<Dash>,
    via: Via,
    Posted { signed, form }: Posted,
) -> Response {
    submit_to_page(&dash, &signed, &via, translate(&form), "/admin", page).await
}
