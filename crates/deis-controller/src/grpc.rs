//! The builder's gRPC API (`proto/deis/controller/v1/builder.proto`), served on the REST port.
//! It does what the REST hooks do, with the same rules, for the builder: every call carries the
//! builder key in the `x-deis-builder-auth` metadata.

use axum::http::StatusCode;
use deis_proto::controller::v1::builder_service_server::{BuilderService, BuilderServiceServer};
use deis_proto::controller::v1::{
    AuthorizePushRequest, AuthorizePushResponse, CreateBuildRequest, CreateBuildResponse,
    GetAppConfigRequest, GetAppConfigResponse, ListAppsRequest, ListAppsResponse, LookupKeyRequest,
    LookupKeyResponse,
};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::db::{App, User};
use crate::domain::config::string_pairs;
use crate::time;

/// The metadata key that carries the builder key.
pub const BUILDER_AUTH: &str = "x-deis-builder-auth";

/// The service, over the API's state.
pub(crate) struct Builder {
    state: AppState,
}

/// The gRPC routes, to merge into the HTTP router.
pub(crate) fn routes(state: AppState) -> axum::Router {
    tonic::service::Routes::new(BuilderServiceServer::new(Builder { state })).into_axum_router()
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::NotFound => Status::not_found("not found"),
            ApiError::Forbidden => Status::permission_denied("the user may not deploy this app"),
            ApiError::Unauthenticated | ApiError::InvalidToken => {
                Status::unauthenticated("invalid credentials")
            }
            ApiError::Fields(fields) => Status::invalid_argument(json!(fields).to_string()),
            ApiError::Detail(StatusCode::SERVICE_UNAVAILABLE, m) => Status::unavailable(m),
            ApiError::Detail(StatusCode::NOT_FOUND, m) => Status::not_found(m),
            ApiError::Detail(StatusCode::CONFLICT, m)
            | ApiError::ErrorKey(StatusCode::CONFLICT, m) => Status::aborted(m),
            ApiError::Detail(status, m) | ApiError::ErrorKey(status, m)
                if status.is_client_error() =>
            {
                Status::invalid_argument(m)
            }
            other => {
                tracing::error!(error = %other, "Builder API call failed");
                Status::internal("internal error")
            }
        }
    }
}

impl Builder {
    async fn check_key<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let sent = request
            .metadata()
            .get(BUILDER_AUTH)
            .map(|v| v.as_bytes().to_vec());
        let expected = self.state.builder_key().await;
        match (sent, expected) {
            (Some(s), Some(e)) if bool::from(s.as_slice().ct_eq(e.as_bytes())) => Ok(()),
            (None, _) => Err(Status::unauthenticated("the builder key is missing")),
            _ => Err(Status::unauthenticated("the builder key is wrong")),
        }
    }

    /// The user and the app they may deploy.
    async fn user_and_app(&self, username: &str, app: &str) -> Result<(User, App), Status> {
        let user = self
            .state
            .db
            .user(username)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| Status::not_found(format!("no user {username}")))?;
        let app = self
            .state
            .app_for(&user, app, &axum::http::Method::POST)
            .await?;
        Ok((user, app))
    }
}

#[tonic::async_trait]
impl BuilderService for Builder {
    async fn lookup_key(
        &self,
        request: Request<LookupKeyRequest>,
    ) -> Result<Response<LookupKeyResponse>, Status> {
        self.check_key(&request).await?;
        let public = request.into_inner().public_key;
        let fingerprint =
            crate::domain::validate::key_fingerprint(&public).map_err(Status::invalid_argument)?;
        let key = self
            .state
            .db
            .key_by_fingerprint(&fingerprint)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| Status::not_found("no user has this key"))?;
        Ok(Response::new(LookupKeyResponse {
            username: key.owner,
            fingerprint: key.fingerprint,
        }))
    }

    async fn authorize_push(
        &self,
        request: Request<AuthorizePushRequest>,
    ) -> Result<Response<AuthorizePushResponse>, Status> {
        self.check_key(&request).await?;
        let r = request.into_inner();
        let (user, app) = self.user_and_app(&r.username, &r.app).await?;
        let push_id = time::new_uuid();
        self.state
            .db
            .insert_push(
                &push_id,
                &user.username,
                &app.id,
                "",
                &r.fingerprint,
                &r.ssh_connection,
                &r.ssh_original_command,
                time::now(),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(AuthorizePushResponse { push_id }))
    }

    async fn get_app_config(
        &self,
        request: Request<GetAppConfigRequest>,
    ) -> Result<Response<GetAppConfigResponse>, Status> {
        self.check_key(&request).await?;
        let r = request.into_inner();
        let (_, app) = self.user_and_app(&r.username, &r.app).await?;
        let (_, config) = self.state.current_config(&app).await?;
        let values = string_pairs(&config.config_values).map_err(ApiError::from)?;
        Ok(Response::new(GetAppConfigResponse {
            values: values.into_iter().collect(),
        }))
    }

    async fn list_apps(
        &self,
        request: Request<ListAppsRequest>,
    ) -> Result<Response<ListAppsResponse>, Status> {
        self.check_key(&request).await?;
        let apps = self.state.db.all_app_ids().await.map_err(ApiError::from)?;
        Ok(Response::new(ListAppsResponse { apps }))
    }

    async fn create_build(
        &self,
        request: Request<CreateBuildRequest>,
    ) -> Result<Response<CreateBuildResponse>, Status> {
        self.check_key(&request).await?;
        let r = request.into_inner();
        let (user, app) = self.user_and_app(&r.username, &r.app).await?;
        let procfile: Map<String, Value> = r
            .procfile
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let mut body = Map::new();
        body.insert("image".into(), json!(r.image));
        body.insert("sha".into(), json!(r.sha));
        body.insert("procfile".into(), Value::Object(procfile));
        body.insert(
            "dockerfile".into(),
            json!(if r.dockerfile { "true" } else { "" }),
        );
        let (_, release) = crate::api::create_build_for(&self.state, &app, &user, &body).await?;
        let domain = self.state.domain().await;
        Ok(Response::new(CreateBuildResponse {
            release_version: u32::try_from(release.version).unwrap_or(u32::MAX),
            domains: vec![format!("{}.{domain}", app.id)],
        }))
    }
}
