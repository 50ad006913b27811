//! The route table: every endpoint once, with what the OpenAPI document says of it. The router
//! and `/v1/openapi.json` are both made from this table, so they cannot disagree.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use super::{AppState, apps, auth, builds, keys, openapi, perms};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone.
    Public,
    /// Anyone; a valid token identifies the caller.
    OptionalToken,
    /// A user's token (`Authorization: token <key>`).
    Token,
    /// An administrator's token.
    Admin,
    /// The builder (`X-Deis-Builder-Auth`).
    Builder,
}

/// One method on one path.
pub(crate) struct Endpoint {
    pub(crate) method: Method,
    /// The axum path (`{name}` parameters; `{*name}` for the rest of the path).
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    /// The status of a successful answer.
    pub(crate) status: u16,
    pub(crate) summary: &'static str,
    pub(crate) handler: MethodRouter<AppState>,
}

fn e(
    method: Method,
    path: &'static str,
    access: Access,
    status: u16,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Endpoint {
    Endpoint {
        method,
        path,
        access,
        status,
        summary,
        handler,
    }
}

/// Every endpoint of the API.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    use Access::{Admin, Builder, OptionalToken, Public, Token};
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const DELETE: Method = Method::DELETE;
    vec![
        e(GET, "/healthz", Public, 200, "Health check: `OK` while the controller serves", get(|| async { "OK" })),
        e(GET, "/v1/openapi.json", Public, 200, "This document", get(openapi::serve)),
        e(GET, "/v1", Token, 200, "Authenticated root; 401 tells a client it found a controller", get(auth::root)),
        e(POST, "/v1/auth/register", OptionalToken, 201, "Register a user (the first becomes admin)", post(auth::register)),
        e(POST, "/v1/auth/login", Public, 200, "Log in: the user's token", post(auth::login)),
        e(DELETE, "/v1/auth/cancel", Token, 204, "Delete your account (or, as admin, another's)", delete(auth::cancel)),
        e(POST, "/v1/auth/passwd", Token, 200, "Change a password", post(auth::passwd)),
        e(POST, "/v1/auth/tokens", Token, 200, "Regenerate tokens (yours, a user's or all as admin)", post(auth::tokens)),
        e(GET, "/v1/users", Admin, 200, "List users", get(auth::users)),
        e(GET, "/v1/admin/perms", Admin, 200, "List administrators", get(perms::admins)),
        e(POST, "/v1/admin/perms", Admin, 201, "Make a user administrator", post(perms::grant_admin)),
        e(DELETE, "/v1/admin/perms/{username}", Admin, 204, "Revoke administrator rights", delete(perms::revoke_admin)),
        e(GET, "/v1/apps", Token, 200, "List the apps you own or share", get(apps::list)),
        e(POST, "/v1/apps", Token, 201, "Create an app (named, or with a generated name)", post(apps::create)),
        e(GET, "/v1/apps/{app}", Token, 200, "An app", get(apps::info)),
        e(POST, "/v1/apps/{app}", Token, 200, "Transfer an app to another owner", post(apps::update)),
        e(DELETE, "/v1/apps/{app}", Token, 204, "Destroy an app and everything it has", delete(apps::destroy)),
        e(GET, "/v1/apps/{app}/logs", Token, 200, "The app's last log lines (`?log_lines=`)", get(apps::logs)),
        e(POST, "/v1/apps/{app}/run", Token, 200, "Run a one-off command: `[exit code, output]`", post(apps::run)),
        e(GET, "/v1/apps/{app}/config", Token, 200, "The current config", get(builds::config)),
        e(POST, "/v1/apps/{app}/config", Token, 201, "Change config, limits or tags: a new release", post(builds::set_config)),
        e(GET, "/v1/apps/{app}/builds", Token, 200, "List builds, newest first", get(builds::builds)),
        e(POST, "/v1/apps/{app}/builds", Token, 201, "Deploy an image (`deis pull`): a new release", post(builds::create_build)),
        e(GET, "/v1/apps/{app}/builds/{uuid}", Token, 200, "A build", get(builds::build)),
        e(GET, "/v1/apps/{app}/releases", Token, 200, "List releases, newest first", get(builds::releases)),
        e(POST, "/v1/apps/{app}/releases/rollback", Token, 201, "Roll back to a release (default: the previous one)", post(builds::rollback)),
        e(GET, "/v1/apps/{app}/releases/{version}", Token, 200, "A release (`v3`)", get(builds::release)),
        e(GET, "/v1/apps/{app}/containers", Token, 200, "List containers", get(apps::containers)),
        e(POST, "/v1/apps/{app}/containers/restart", Token, 200, "Restart all containers", post(apps::restart_all)),
        e(GET, "/v1/apps/{app}/containers/{type}", Token, 200, "List containers of a type", get(apps::containers_of_type)),
        e(POST, "/v1/apps/{app}/containers/{type}/restart", Token, 200, "Restart the containers of a type", post(apps::restart_type)),
        e(GET, "/v1/apps/{app}/containers/{type}/{num}", Token, 200, "A container", get(apps::container)),
        e(POST, "/v1/apps/{app}/containers/{type}/{num}/restart", Token, 200, "Restart a container", post(apps::restart_one)),
        e(POST, "/v1/apps/{app}/scale", Token, 204, "Scale process types (`{\"web\": 3}`)", post(apps::scale)),
        e(GET, "/v1/apps/{app}/domains", Token, 200, "List custom domains", get(keys::domains)),
        e(POST, "/v1/apps/{app}/domains", Token, 201, "Add a custom domain", post(keys::add_domain)),
        e(DELETE, "/v1/apps/{app}/domains/{domain}", Token, 204, "Remove a custom domain", delete(keys::remove_domain)),
        e(GET, "/v1/apps/{app}/perms", Token, 200, "List collaborators", get(perms::collaborators)),
        e(POST, "/v1/apps/{app}/perms", Token, 201, "Share the app with a user", post(perms::share)),
        e(DELETE, "/v1/apps/{app}/perms/{username}", Token, 204, "Stop sharing the app with a user", delete(perms::unshare)),
        e(GET, "/v1/keys", Token, 200, "List your SSH keys", get(keys::keys)),
        e(POST, "/v1/keys", Token, 201, "Add an SSH key", post(keys::add_key)),
        e(GET, "/v1/keys/{*id}", Token, 200, "One of your SSH keys", get(keys::key)),
        e(DELETE, "/v1/keys/{*id}", Token, 204, "Remove an SSH key", delete(keys::remove_key)),
        e(GET, "/v1/certs", Token, 200, "List your certificates", get(keys::certs)),
        e(POST, "/v1/certs", Token, 201, "Add a certificate for a custom domain", post(keys::add_cert)),
        e(GET, "/v1/certs/{common_name}", Token, 200, "A certificate", get(keys::cert)),
        e(DELETE, "/v1/certs/{common_name}", Token, 204, "Remove a certificate", delete(keys::remove_cert)),
        e(POST, "/v1/hooks/push", Builder, 201, "Builder: authorise and record a push", post(perms::hook_push)),
        e(POST, "/v1/hooks/build", Builder, 200, "Builder: create a build and release it", post(perms::hook_build)),
        e(POST, "/v1/hooks/builds", Builder, 200, "Builder: the same as /v1/hooks/build", post(perms::hook_build)),
        e(POST, "/v1/hooks/config", Builder, 200, "Builder: the app's config", post(perms::hook_config)),
    ]
}
