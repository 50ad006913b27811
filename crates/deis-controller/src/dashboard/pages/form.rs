//! What every form of the dashboard does: it becomes one REST request (or is refused before
//! any is sent), and the browser goes back to its page (`303`) when the request worked, or gets
//! the page again with the message in the form's section and the API's status when it did not.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::dashboard::Dash;
use crate::dashboard::rest::{Via, seg};
use crate::dashboard::session::Signed;
use crate::dashboard::view::{no_such_action, see_other};

/// A form's request: the section of the page it belongs to, the method, the path, the body.
pub(crate) struct Request {
    pub(crate) section: &'static str,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
}

pub(crate) fn request(
    section: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
) -> Request {
    Request {
        section,
        method,
        path,
        body,
    }
}

/// Why a form makes no request.
#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    /// The page has no such form.
    NoSuchAction,
    /// What is wrong with the form, shown in its section.
    Form(&'static str, String),
}

/// A failed form: the section it belongs to and the message (the API's, or the refusal's).
pub(crate) struct Problem {
    pub(crate) section: &'static str,
    pub(crate) message: String,
}

/// One segment of a form's path: the field's `value` as the name of a `what`, refused in
/// `section` when it would make the path another resource's.
pub(crate) fn name_in(
    section: &'static str,
    what: &'static str,
    value: &str,
) -> Result<String, Refusal> {
    seg(what, value).map_err(|bad| Refusal::Form(section, bad.message()))
}

/// Sends the form's request as the signed-in user: when it works, `303` to `back(section)`;
/// else `page` with the problem and its status (`400` for a refused form).
pub(crate) async fn submit(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    asked: Result<Request, Refusal>,
    back: impl FnOnce(&str) -> String,
    page: impl AsyncFnOnce(Problem, StatusCode) -> Response,
) -> Response {
    let req = match asked {
        Ok(req) => req,
        Err(Refusal::NoSuchAction) => return no_such_action(&signed.viewer()),
        Err(Refusal::Form(section, message)) => {
            return page(Problem { section, message }, StatusCode::BAD_REQUEST).await;
        }
    };
    let api = dash.client(signed, via);
    let reply = api.call(req.method, &req.path, req.body.as_ref()).await;
    if reply.ok() {
        return see_other(&back(req.section));
    }
    let problem = Problem {
        section: req.section,
        message: reply.error(),
    };
    page(problem, reply.status).await
}

/// [`submit`] for a page that shows one error above all its forms (the keys, the users):
/// `page(dash, signed, via, error, status)` renders it, `back` is its URL.
pub(crate) async fn submit_to_page(
    dash: &Dash,
    signed: &Signed,
    via: &Via,
    asked: Result<Request, Refusal>,
    back: &str,
    page: impl AsyncFnOnce(&Dash, &Signed, &Via, Option<&str>, StatusCode) -> Response,
) -> Response {
    let shown = async |problem: Problem, status| {
        page(dash, signed, via, Some(&problem.message), status).await
    };
    submit(dash, signed, via, asked, |_| back.to_owned(), shown).await
}
