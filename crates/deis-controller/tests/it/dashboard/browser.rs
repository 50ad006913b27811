//! A browser without JavaScript, over raw HTTP: forms posted with the session's cookie, pages
//! read whole, and the session and CSRF token a sign-in gives.

use crate::support::{Api, Resp};

pub(crate) const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

/// A browser's session: its cookie and the CSRF token of its pages.
pub(crate) struct Browser {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.header(name).unwrap_or_default()
}

pub(crate) fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        char::from(b).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts a form, with the session's cookie when there is one.
pub(crate) async fn post(
    api: &Api,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Resp {
    let mut headers = vec![FORM.to_owned()];
    if let Some(c) = cookie {
        headers.push(format!("Cookie: deis_session={c}"));
    }
    api.raw("POST", path, &headers, Some(&encode(fields)))
        .await
        .expect("POST")
}

pub(crate) async fn get(api: &Api, path: &str, cookie: Option<&str>) -> Resp {
    let headers: Vec<String> = cookie
        .map(|c| vec![format!("Cookie: deis_session={c}")])
        .unwrap_or_default();
    api.raw("GET", path, &headers, None).await.expect("GET")
}

/// The session id a `Set-Cookie` header gives.
pub(crate) fn session_of(r: &Resp) -> String {
    let set = header(r, "set-cookie");
    let value = set
        .strip_prefix("deis_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("a session cookie in {r:?}"));
    value.to_owned()
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("a CSRF field in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

/// Signs in through the form: the browser's session.
pub(crate) async fn sign_in(api: &Api, username: &str) -> Browser {
    let r = post(
        api,
        "/signin",
        None,
        &[("username", username), ("password", "opensesame")],
    )
    .await;
    assert_eq!((r.status, header(&r, "location")), (303, "/"), "{r:?}");
    let cookie = session_of(&r);
    let page = get(api, "/", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{page:?}");
    Browser {
        csrf: csrf_of(&page.body),
        cookie,
    }
}

/// Registers `username` (not the first user: that one is an administrator), creates `app` as
/// theirs, and signs in.
pub(crate) async fn owner_of(api: &Api, username: &str, app: &str) -> Browser {
    let token = api.user(username).await;
    api.app(&token, app).await;
    sign_in(api, username).await
}
