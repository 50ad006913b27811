//! A running platform as a user meets it, whichever way it was started: the one fixture
//! abstraction every flow is written against. Two set-ups implement it: [`SingleHost`], the
//! README's `deis-platform` process (a configuration file and flags), and [`Containers`], a
//! container per component as `deisctl` runs them.

mod cluster;
mod containers;
mod single_host;

use std::net::SocketAddr;
use std::path::Path;

pub(crate) use cluster::ClusterPlatform;
pub(crate) use containers::{Containers, TAG, build_images};
pub(crate) use single_host::{Options, SingleHost};

use crate::support::{API, Ran, SshKey, http};

/// What a user reaches of a running platform, and what the flows ask of the set-up beyond.
pub(crate) trait Setup: Sync {
    /// The router's HTTP address.
    fn router(&self) -> SocketAddr;
    /// The builder's SSH address.
    fn ssh(&self) -> SocketAddr;
    /// Scratch space for keys, home directories and work trees.
    fn dir(&self) -> &Path;
    /// The URL `deis register` takes.
    fn controller_url(&self) -> String;
    /// The router's HTTPS address.
    fn https(&self) -> SocketAddr;
    /// The logger's API address.
    fn logger(&self) -> SocketAddr;
    /// Every port the platform listens on (controller, builder, router, logger, ...).
    fn platform_ports(&self) -> Vec<u16>;
    /// The Docker label (`key=value`) on every container the platform runs for apps.
    fn app_label(&self) -> String;
    /// The image Dockerfile apps build FROM (busybox with `httpd`).
    fn base_image(&self) -> String;
    /// Whether the builder still holds `app`'s repository.
    fn has_repository(&self, app: &str) -> bool;
    /// What the platform's builder and controller logged so far (the operator's log).
    fn platform_log(&self) -> String;
    /// The registry proxy images are pushed to and pulled through (`host:port`), if the
    /// platform has a registry.
    fn registry(&self) -> Option<String>;
    /// Plays a reboot's part for the apps' isolation: the firewall rules gone from the kernel
    /// and the platform restarted as the host brings it back; false where the platform's
    /// every start sets them anyway (nothing done).
    async fn reboot(&self) -> bool;

    /// A request to the controller through the router.
    async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        http(self.router(), method, API, path, token, body).await
    }

    /// Registers `username` through the API (the platform's first user is its administrator)
    /// and logs in: their token.
    async fn user(&self, username: &str) -> String {
        let user = format!(
            r#"{{"username": "{username}", "password": "pw", "email": "{username}@example.com"}}"#
        );
        let (status, body) = self.api("POST", "/v1/auth/register/", None, &user).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self.api("POST", "/v1/auth/login/", None, &user).await;
        assert_eq!(status, 200, "{body}");
        let token: serde_json::Value = serde_json::from_str(&body).expect("json");
        token["token"].as_str().expect("token").to_owned()
    }

    /// Creates `app` for the token's user.
    async fn create_app(&self, token: &str, app: &str) {
        let body = format!(r#"{{"id": "{app}"}}"#);
        let (status, text) = self.api("POST", "/v1/apps/", Some(token), &body).await;
        assert_eq!(status, 201, "{text}");
    }

    /// Destroys `app` for the token's user.
    async fn destroy_app(&self, token: &str, app: &str) {
        let path = format!("/v1/apps/{app}/");
        let (status, text) = self.api("DELETE", &path, Some(token), "").await;
        assert_eq!(status, 204, "{text}");
    }

    /// A new SSH key pair registered for the token's user.
    async fn add_key(&self, token: &str, name: &str) -> SshKey {
        let key = SshKey::generate(self.dir(), name);
        let body = serde_json::json!({"id": name, "public": key.public}).to_string();
        let (status, text) = self.api("POST", "/v1/keys/", Some(token), &body).await;
        assert_eq!(status, 201, "{text}");
        key
    }

    /// `GET /` on the app's domain: the status and body.
    async fn get_app(&self, app: &str) -> (u16, String) {
        let host = format!("{app}.example.com");
        http(self.router(), "GET", &host, "/", None, "").await
    }

    /// The builder's URL of `app`'s repository.
    fn remote(&self, app: &str) -> String {
        let ssh = self.ssh();
        format!("ssh://git@{}:{}/{app}.git", ssh.ip(), ssh.port())
    }

    /// `git push` of `work`'s master to `app` with `key`, ready to run.
    fn push_command(&self, work: &Path, key: &SshKey, app: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        command
            .args(["push", &self.remote(app), "master"])
            .current_dir(work)
            .env("GIT_SSH_COMMAND", key.ssh_command())
            .kill_on_drop(true);
        command
    }

    /// `git push` of `work`'s master to `app` with `key`: whether it succeeded and what git
    /// printed.
    async fn push(&self, work: &Path, key: &SshKey, app: &str) -> (bool, String) {
        let ran = Ran::from(
            self.push_command(work, key, app)
                .output()
                .await
                .expect("git push runs"),
        );
        (ran.ok, ran.out)
    }
}
