//! Sign-in sessions: a random id in an `HttpOnly; SameSite=Strict` cookie, its SHA-256 in the
//! database with the user's name and the session's CSRF token, at most [`PER_USER`] a user. A
//! page that needs a user takes [`Signed`]; without a valid session it sends the browser to the
//! sign-in page.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Dash;
use super::view::{Viewer, see_other};
use crate::db::User;

/// The cookie's name over plain HTTP.
pub(crate) const COOKIE_NAME: &str = "deis_session";

/// The cookie's name over HTTPS: browsers take a `__Host-` cookie only from this host itself,
/// never from an app on a sibling name setting one for the whole domain.
pub(crate) const HOST_COOKIE_NAME: &str = "__Host-deis_session";

/// How long a sign-in lasts.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The most sessions a user has at once: signing in once more ends the oldest, so that a
/// script signing in over and over does not fill the database.
pub(crate) const PER_USER: i64 = 20;

/// A signed-in browser: its user (as stored now) and its CSRF token.
pub(crate) struct Signed {
    pub(crate) user: User,
    pub(crate) csrf: String,
    pub(crate) id_hash: String,
}

impl Signed {
    /// What the page frame shows of the user.
    pub(crate) fn viewer(&self) -> Viewer<'_> {
        Viewer {
            username: &self.user.username,
            is_admin: self.user.is_superuser,
            csrf: &self.csrf,
        }
    }

    /// The user's API token, which the dashboard's REST requests carry.
    pub(crate) fn token(&self) -> &str {
        &self.user.token
    }
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The session ids the request's cookies hold (a browser may send more than one cookie of the
/// name, e.g. a domain cookie beside a host one), at most a few.
pub(crate) fn cookies(parts: &Parts) -> Vec<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME || *name == HOST_COOKIE_NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .take(4)
        .collect()
}

/// Whether the browser reached us over HTTPS (the router says so): the cookie is then `Secure`.
fn over_https(parts: &Parts) -> bool {
    parts
        .headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session of a request's cookie, if it is valid; an expired one is deleted. A request with
/// more than one session cookie is signed out: over plain HTTP an app on a sibling name can set
/// one for the whole domain (its own session, to sign the user in as someone else), and which
/// one is the host's own cannot be told.
pub(crate) async fn current(dash: &Dash, parts: &Parts) -> Option<Signed> {
    match cookies(parts).as_slice() {
        [id] => valid(dash, id).await,
        _ => None,
    }
}

async fn valid(dash: &Dash, id: &str) -> Option<Signed> {
    let id_hash = hash(id);
    let session = dash.state.db.session(&id_hash).await.ok()??;
    let age = crate::time::now().saturating_sub(session.created);
    if age > LIFETIME.as_micros() as i64 {
        let _ = dash.state.db.delete_session(&id_hash).await;
        return None;
    }
    let user = dash.state.db.user(&session.username).await.ok()??;
    user.is_active.then_some(Signed {
        user,
        csrf: session.csrf,
        id_hash,
    })
}

impl FromRequestParts<Dash> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, dash: &Dash) -> Result<Self, Self::Rejection> {
        current(dash, parts)
            .await
            .ok_or_else(|| see_other("/signin"))
    }
}

/// Starts a session for `username`: the `Set-Cookie` value, or `None` when it could not be
/// stored.
pub(crate) async fn start(dash: &Dash, parts: &Parts, username: &str) -> Option<String> {
    let id = format!(
        "{}{}",
        crate::passwords::new_token(),
        crate::passwords::new_token()
    );
    let csrf = crate::passwords::new_token();
    let now = crate::time::now();
    let db = &dash.state.db;
    let _ = db
        .delete_sessions_before(now - LIFETIME.as_micros() as i64)
        .await;
    let id_hash = hash(&id);
    if let Err(e) = db.insert_session(&id_hash, username, &csrf, now).await {
        tracing::warn!(error = %e, "Storing a dashboard session failed");
        return None;
    }
    let others = PER_USER - 1;
    if let Err(e) = db.keep_newest_sessions(username, &id_hash, others).await {
        // The new session stands; the oldest go at the next sign-in.
        tracing::warn!(error = %e, "Ending a user's oldest dashboard sessions failed");
    }
    let (name, secure) = if over_https(parts) {
        (HOST_COOKIE_NAME, "; Secure")
    } else {
        (COOKIE_NAME, "")
    };
    Some(format!(
        "{name}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        LIFETIME.as_secs()
    ))
}

/// Ends a session and tells the browser to forget its cookie.
pub(crate) async fn end(dash: &Dash, signed: &Signed) -> Response {
    if let Err(e) = dash.state.db.delete_session(&signed.id_hash).await {
        tracing::warn!(error = %e, "Deleting a dashboard session failed");
        return super::view::error_page(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Signing out failed: the platform's database did not answer; try again",
            Some(&signed.viewer()),
        );
    }
    let clear = |name: &str| format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    (
        [
            (SET_COOKIE, clear(COOKIE_NAME)),
            (SET_COOKIE, clear(HOST_COOKIE_NAME) + "; Secure"),
        ],
        see_other("/signin"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, expect: &[&str]) {
        let (parts, ()) = axum::http::Request::builder()
            .header(COOKIE, header)
            .body(())
            .expect("a request")
            .into_parts();
        assert_eq!(cookies(&parts), expect, "{header}");
    }

    #[test]
    fn a_host_cookie_is_read_too() {
        check("__Host-deis_session=abc", &["abc"]);
    }

    #[test]
    fn every_session_cookie_is_read() {
        check("deis_session=abc", &["abc"]);
        check(
            "other=1; deis_session=abc; deis_session=def",
            &["abc", "def"],
        );
        check("deis_session=; x=deis_session", &[]);
        check(&format!("deis_session={}", "a".repeat(200)), &[]);
    }
}
