//! The page frame every dashboard page shares (head, skip link, navigation, sign-out form), the
//! error box, and the way a page becomes a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::rest::NotAName;

/// Who is looking at a page: shown in the navigation, and the CSRF token its forms carry.
pub(crate) struct Viewer<'a> {
    pub(crate) username: &'a str,
    pub(crate) is_admin: bool,
    pub(crate) csrf: &'a str,
}

/// A whole page: `title` in the head and as the main heading's context, `app` (if any) for the
/// live script.
pub(crate) fn layout(
    title: &str,
    viewer: Option<&Viewer<'_>>,
    app: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Deis" }
                link rel="stylesheet" href="/static/style.css";
                @if app.is_some() {
                    script src="/static/live.js" defer {}
                }
            }
            body data-app=[app] {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "Deis" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Apps" } }
                                li { a href="/keys" { "SSH keys" } }
                                @if v.is_admin {
                                    li { a href="/admin" { "Users" } }
                                }
                            }
                        }
                        form class="signout" method="post" action="/signout" {
                            (csrf_field(v.csrf))
                            span class="who" { (v.username) }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// An error where it happened, announced to screen readers.
pub(crate) fn alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class="error" role="alert" { (m) }
        }
    }
}

/// A page with its status.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

/// A page that only says what went wrong (an app the viewer may not see, a failure).
pub(crate) fn error_page(
    status: StatusCode,
    message: &str,
    viewer: Option<&Viewer<'_>>,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        layout(
            title,
            viewer,
            None,
            html! {
                h1 { (title) }
                (alert(Some(message)))
                p { a href="/" { "Back to your apps" } }
            },
        ),
    )
}

/// The answer to a form that names an action its page does not have.
pub(crate) fn no_such_action(viewer: &Viewer<'_>) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "There is no such action",
        Some(viewer),
    )
}

/// The answer to a name that cannot be part of a REST path (empty, `.` or `..`).
pub(crate) fn not_a_name(bad: &NotAName, viewer: &Viewer<'_>) -> Response {
    error_page(StatusCode::BAD_REQUEST, &bad.message(), Some(viewer))
}

/// `303 See Other` to `to`: where a form that worked sends the browser.
pub(crate) fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, to.to_owned())],
    )
        .into_response()
}
