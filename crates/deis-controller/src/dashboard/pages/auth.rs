//! Signing in, registering (as the platform's registration mode allows) and signing out.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::json;

use crate::dashboard::csrf::Posted;
use crate::dashboard::rest::Via;
use crate::dashboard::session;
use crate::dashboard::view::{alert, error_page, layout, respond, see_other};
use crate::dashboard::{Dash, Fields};

fn signin_page(error: Option<&str>, username: &str) -> Markup {
    layout(
        "Sign in",
        None,
        None,
        html! {
            h1 { "Sign in" }
            (alert(error))
            form class="card" method="post" action="/signin" {
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username" required value=(username) maxlength="150";
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required maxlength="4096";
                button type="submit" { "Sign in" }
            }
            p { "No account? " a href="/register" { "Register" } }
        },
    )
}

fn register_page(error: Option<&str>, closed: Option<&str>, username: &str, email: &str) -> Markup {
    layout(
        "Register",
        None,
        None,
        html! {
            h1 { "Register" }
            (alert(error))
            @if let Some(why) = closed {
                p class="note" { (why) }
            } @else {
                form class="card" method="post" action="/register" {
                    label for="username" { "Username" }
                    input id="username" name="username" type="text" autocomplete="username" required value=(username) maxlength="30";
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="email" value=(email) maxlength="254";
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="new-password" required maxlength="4096";
                    button type="submit" { "Register" }
                }
            }
            p { "Have an account? " a href="/signin" { "Sign in" } }
        },
    )
}

pub(crate) async fn signin_form(State(dash): State<Dash>, parts: Parts) -> Response {
    if session::current(&dash, &parts).await.is_some() {
        return see_other("/");
    }
    signin_page(None, "").into_response()
}

/// Logs in through the API (with its throttling and messages), then starts a session.
pub(crate) async fn signin(
    State(dash): State<Dash>,
    via: Via,
    parts: Parts,
    form: Fields,
) -> Response {
    let username = form.get("username");
    let body = json!({"username": username, "password": form.0.get("password").map_or("", |p| p.as_str())});
    let api = dash.anonymous(&via);
    let reply = api.call(Method::POST, "/v1/auth/login", Some(&body)).await;
    if !reply.ok() {
        return respond(reply.status, signin_page(Some(&reply.error()), username));
    }
    signed_in(&dash, &parts, username).await
}

async fn signed_in(dash: &Dash, parts: &Parts, username: &str) -> Response {
    match session::start(dash, parts, username).await {
        Some(cookie) => ([(SET_COOKIE, cookie)], see_other("/")).into_response(),
        None => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in failed: the platform's database did not answer; try again",
            None,
        ),
    }
}

/// Why the form is not offered, from the registration mode (the API decides all the same).
async fn closed(dash: &Dash) -> Option<&'static str> {
    match dash.state.setting("registrationMode").await.as_deref() {
        Some("disabled") => Some("Registration is disabled on this platform."),
        Some("admin_only") => {
            Some("Only an administrator can register users on this platform (deis register).")
        }
        _ => None,
    }
}

pub(crate) async fn register_form(State(dash): State<Dash>, parts: Parts) -> Response {
    if session::current(&dash, &parts).await.is_some() {
        return see_other("/");
    }
    register_page(None, closed(&dash).await, "", "").into_response()
}

/// Registers through the API, then signs in as the new user.
pub(crate) async fn register(
    State(dash): State<Dash>,
    via: Via,
    parts: Parts,
    form: Fields,
) -> Response {
    let username = form.get("username");
    let email = form.get("email");
    let password = form.0.get("password").map_or("", |p| p.as_str());
    let body = json!({"username": username, "password": password, "email": email});
    let api = dash.anonymous(&via);
    let reply = api
        .call(Method::POST, "/v1/auth/register", Some(&body))
        .await;
    if !reply.ok() {
        let page = register_page(Some(&reply.error()), None, username, email);
        return respond(reply.status, page);
    }
    signed_in(&dash, &parts, username).await
}

/// Signs out: the session is deleted, so its cookie opens nothing any more.
pub(crate) async fn signout(State(dash): State<Dash>, Posted { signed, .. }: Posted) -> Response {
    session::end(&dash, &signed).await
}
