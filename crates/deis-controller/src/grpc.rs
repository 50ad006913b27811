//! The builder's gRPC API (`proto/deis/controller/v1/builder.proto`), served on the REST port.
//! It does what the REST hooks do, with the same rules (`domain`), for the builder: every call
//! carries the builder key in the `x-deis-builder-auth` metadata. The rules' failures become a
//! `tonic::Status` once, here, with the code of their [`Code`].

use deis_proto::controller::v1::builder_service_server::{BuilderService, BuilderServiceServer};
use deis_proto::controller::v1::{
    AuthorizePushRequest, AuthorizePushResponse, CreateBuildRequest, CreateBuildResponse,
    GetAppConfigRequest, GetAppConfigResponse, ListAppsRequest, ListAppsResponse, LookupKeyRequest,
    LookupKeyResponse,
};
use deis_types::Code;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};

use crate::domain::DomainError;
use crate::domain::access::Act;
use crate::domain::build::{self, NewBuild};
use crate::domain::config::string_pairs;
use crate::report::Report;
use crate::state::AppState;
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

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Status {
        let code = e.code();
        let message = match e.field() {
            // The shape the REST API gives the same refusal: `{"field": ["message"]}`.
            Some(field) => json!({ field: [e.to_string()] }).to_string(),
            None if code == Code::Internal => {
                tracing::error!(error = %Report(&e), "Builder API call failed");
                "internal error".to_owned()
            }
            None => e.to_string(),
        };
        Status::new(tonic::Code::from_i32(code.grpc_code()), message)
    }
}

type Reply<T> = Result<Response<T>, Status>;

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

    async fn authorize(
        &self,
        r: AuthorizePushRequest,
    ) -> Result<AuthorizePushResponse, DomainError> {
        let (user, app) = self
            .state
            .user_and_app(&r.username, &r.app, Act::Change)
            .await?;
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
            .await?;
        Ok(AuthorizePushResponse { push_id })
    }

    async fn app_config(
        &self,
        r: GetAppConfigRequest,
    ) -> Result<GetAppConfigResponse, DomainError> {
        let (_, app) = self
            .state
            .user_and_app(&r.username, &r.app, Act::Change)
            .await?;
        let (_, config) = self.state.current_config(&app).await?;
        let values = string_pairs(&config.config_values)?;
        Ok(GetAppConfigResponse {
            values: values.into_iter().collect(),
        })
    }

    async fn build(&self, r: CreateBuildRequest) -> Result<CreateBuildResponse, DomainError> {
        let (user, app) = self
            .state
            .user_and_app(&r.username, &r.app, Act::Change)
            .await?;
        let procfile: Map<String, Value> = r
            .procfile
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let new = NewBuild {
            image: r.image,
            sha: r.sha,
            procfile,
            dockerfile: if r.dockerfile { "true" } else { "" }.to_owned(),
        };
        let (_, release) = build::create(&self.state, &app, &user, new).await?;
        let domain = self.state.domain().await;
        Ok(CreateBuildResponse {
            release_version: u32::try_from(release.version).unwrap_or(u32::MAX),
            domains: vec![format!("{}.{domain}", app.id)],
        })
    }
}

#[tonic::async_trait]
impl BuilderService for Builder {
    async fn lookup_key(&self, request: Request<LookupKeyRequest>) -> Reply<LookupKeyResponse> {
        self.check_key(&request).await?;
        let key = self
            .state
            .key_owner(&request.into_inner().public_key)
            .await?;
        Ok(Response::new(LookupKeyResponse {
            username: key.owner,
            fingerprint: key.fingerprint,
        }))
    }

    async fn authorize_push(
        &self,
        request: Request<AuthorizePushRequest>,
    ) -> Reply<AuthorizePushResponse> {
        self.check_key(&request).await?;
        Ok(Response::new(self.authorize(request.into_inner()).await?))
    }

    async fn get_app_config(
        &self,
        request: Request<GetAppConfigRequest>,
    ) -> Reply<GetAppConfigResponse> {
        self.check_key(&request).await?;
        Ok(Response::new(self.app_config(request.into_inner()).await?))
    }

    async fn list_apps(&self, request: Request<ListAppsRequest>) -> Reply<ListAppsResponse> {
        self.check_key(&request).await?;
        let apps = self
            .state
            .db
            .all_app_ids()
            .await
            .map_err(DomainError::from)?;
        Ok(Response::new(ListAppsResponse { apps }))
    }

    async fn create_build(
        &self,
        request: Request<CreateBuildRequest>,
    ) -> Reply<CreateBuildResponse> {
        self.check_key(&request).await?;
        Ok(Response::new(self.build(request.into_inner()).await?))
    }
}
