//! The builder's client of the controller's `BuilderService` (gRPC): key look-ups, push
//! authorisation, app config and build creation, authenticated with the builder key from the
//! config store. The controller's address comes from the configuration or the store.

use std::collections::HashMap;
use std::sync::Arc;

use deis_proto::controller::v1 as pb;
use deis_proto::controller::v1::builder_service_client::BuilderServiceClient;
use deis_store::ConfigStore;
use deis_store::keys::{Component, Key};
use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

/// The metadata carrying the builder key.
const BUILDER_AUTH: &str = "x-deis-builder-auth";

/// A failed call, worded for the user at the other end of `git push`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControllerError {
    /// The call did not get through (`Unavailable` or `Unknown`).
    #[error("the controller cannot be reached ({}); check that it is running", .0.message())]
    Unreachable(#[source] Box<tonic::Status>),
    /// The controller's URL is not one.
    #[error("the controller cannot be reached ({source}); check that it is running")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// No connection could be made.
    #[error("the controller cannot be reached ({url}: {source}); check that it is running")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The controller answered no: its reason.
    #[error("{}", .0.message())]
    Refused(#[source] Box<tonic::Status>),
    #[error(
        "the controller is not found: {} and its port are not in the config store",
        deis_store::keys::Key::host(deis_store::keys::Component::Controller).path()
    )]
    NotPublished,
}

impl ControllerError {
    /// Whether the same call may succeed later: the controller was down, not yet published or
    /// out of time. Its refusals stand.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ControllerError::Unreachable(_)
            | ControllerError::Connect { .. }
            | ControllerError::NotPublished => true,
            ControllerError::BadUrl { .. } => false,
            ControllerError::Refused(status) => status.code() == tonic::Code::DeadlineExceeded,
        }
    }
}

impl ControllerError {
    /// Whether the call was lost with its connection (the controller went away in the middle,
    /// or none could be reached), as opposed to answered: a controller's own answer, a refusal
    /// or a failed deploy (503 over REST), carries no transport error under it.
    pub(crate) fn went_away(&self) -> bool {
        match self {
            ControllerError::Connect { .. } | ControllerError::NotPublished => true,
            ControllerError::Unreachable(status) => {
                std::error::Error::source(status.as_ref()).is_some()
            }
            ControllerError::BadUrl { .. } | ControllerError::Refused(_) => false,
        }
    }
}

impl From<tonic::Status> for ControllerError {
    fn from(status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown => {
                ControllerError::Unreachable(Box::new(status))
            }
            _ => ControllerError::Refused(Box::new(status)),
        }
    }
}

/// What a build tells the controller.
#[derive(Clone)]
pub(crate) struct NewBuild {
    pub(crate) username: String,
    pub(crate) app: String,
    pub(crate) image: String,
    pub(crate) sha: String,
    pub(crate) procfile: HashMap<String, String>,
    pub(crate) dockerfile: bool,
}

/// The controller, as the builder calls it.
#[derive(Clone)]
pub(crate) struct Controller {
    store: Arc<dyn ConfigStore>,
    url: Option<String>,
    channel: Arc<Mutex<Option<(String, Channel)>>>,
}

impl Controller {
    pub(crate) fn new(store: Arc<dyn ConfigStore>, url: Option<String>) -> Self {
        Controller {
            store,
            url,
            channel: Arc::default(),
        }
    }

    async fn setting(&self, name: &str) -> Option<String> {
        let key = Key::setting(Component::Controller, name).ok()?;
        self.store
            .get(&key.path())
            .await
            .ok()
            .flatten()
            .map(|kv| kv.value)
    }

    async fn client(&self) -> Result<BuilderServiceClient<Channel>, ControllerError> {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => deis_runtime::Endpoint::lookup(self.store.as_ref(), Component::Controller)
                .await
                .ok_or(ControllerError::NotPublished)?
                .http_url(),
        };
        let mut cached = self.channel.lock().await;
        if let Some((cached_url, channel)) = cached.as_ref()
            && *cached_url == url
        {
            return Ok(BuilderServiceClient::new(channel.clone()));
        }
        let channel = Endpoint::from_shared(url.clone())
            .map_err(|source| ControllerError::BadUrl {
                url: url.clone(),
                source,
            })?
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(|source| ControllerError::Connect {
                url: url.clone(),
                source,
            })?;
        *cached = Some((url, channel.clone()));
        Ok(BuilderServiceClient::new(channel))
    }

    async fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(key) = self.setting("builderKey").await
            && let Ok(value) = key.parse()
        {
            request.metadata_mut().insert(BUILDER_AUTH, value);
        }
        request
    }

    /// The user owning an SSH public key (OpenSSH format): `(username, fingerprint)`.
    pub(crate) async fn lookup_key(
        &self,
        public_key: &str,
    ) -> Result<(String, String), ControllerError> {
        let request = self
            .request(pb::LookupKeyRequest {
                public_key: public_key.to_owned(),
            })
            .await;
        let r = self.client().await?.lookup_key(request).await?.into_inner();
        Ok((r.username, r.fingerprint))
    }

    /// Records a push of `app` by `username`, if they may deploy it.
    pub(crate) async fn authorize_push(
        &self,
        message: pb::AuthorizePushRequest,
    ) -> Result<String, ControllerError> {
        let request = self.request(message).await;
        let r = self.client().await?.authorize_push(request).await?;
        Ok(r.into_inner().push_id)
    }

    /// The app's current config, if `username` may deploy it.
    pub(crate) async fn app_config(
        &self,
        username: &str,
        app: &str,
    ) -> Result<HashMap<String, String>, ControllerError> {
        let request = self
            .request(pb::GetAppConfigRequest {
                username: username.to_owned(),
                app: app.to_owned(),
            })
            .await;
        let r = self.client().await?.get_app_config(request).await?;
        Ok(r.into_inner().values)
    }

    /// The name of every app.
    pub(crate) async fn list_apps(&self) -> Result<Vec<String>, ControllerError> {
        let request = self.request(pb::ListAppsRequest {}).await;
        let r = self.client().await?.list_apps(request).await?;
        Ok(r.into_inner().apps)
    }

    /// Creates the build and its release, which the controller deploys before answering:
    /// `(release version, app domains)`.
    pub(crate) async fn create_build(
        &self,
        build: NewBuild,
    ) -> Result<(u32, Vec<String>), ControllerError> {
        let request = self
            .request(pb::CreateBuildRequest {
                username: build.username,
                app: build.app,
                image: build.image,
                sha: build.sha,
                procfile: build.procfile,
                dockerfile: build.dockerfile,
            })
            .await;
        let r = self
            .client()
            .await?
            .create_build(request)
            .await?
            .into_inner();
        Ok((r.release_version, r.domains))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_before_and_say_whether_to_retry() {
        let unreachable =
            "the controller cannot be reached (connection refused); check that it is running";
        let cases = [
            (
                tonic::Code::Unavailable,
                "connection refused",
                unreachable,
                true,
            ),
            (tonic::Code::PermissionDenied, "may not", "may not", false),
            (
                tonic::Code::NotFound,
                "no user has this key",
                "no user has this key",
                false,
            ),
            (tonic::Code::DeadlineExceeded, "too slow", "too slow", true),
        ];
        for (code, message, text, retryable) in cases {
            let e = ControllerError::from(tonic::Status::new(code, message));
            assert_eq!(
                (e.to_string().as_str(), e.is_retryable()),
                (text, retryable)
            );
        }
        assert!(ControllerError::NotPublished.is_retryable());
    }

    #[test]
    fn a_lost_connection_went_away_and_a_failed_deploy_was_answered() {
        let answered = ControllerError::from(tonic::Status::unavailable(
            "the release could not be deployed",
        ));
        assert!(!answered.went_away(), "the controller's own 503");
        let lost = ControllerError::from(tonic::Status::from_error(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        )));
        assert!(lost.went_away(), "{lost}");
        assert!(ControllerError::NotPublished.went_away());
    }
}
