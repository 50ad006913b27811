//! The controller's rules, independent of HTTP and gRPC: who may touch which app
//! (`access`), config validation and merging (`config`), builds (`build`) and the images
//! `deis pull` copies onto the platform (`pull`), release creation, summaries, deploys and
//! scaling (`release`), and the validation of names, domains, keys and certificates
//! (`validate`). The REST handlers and the builder's gRPC API both call these.
//!
//! Each module has its own error enum; every variant maps to one [`Code`], and [`DomainError`]
//! gathers them for the two edges: `api::error` renders it in the Deis shapes with
//! [`Code::http_status`], `grpc` turns it into a `tonic::Status` with [`Code::grpc_code`].
//! Nothing here knows either transport.

pub(crate) mod access;
pub(crate) mod build;
pub(crate) mod config;
pub(crate) use deis_types::image;
pub(crate) mod names;
pub(crate) mod pull;
pub(crate) mod release;
pub(crate) mod validate;

use deis_types::Code;

use crate::db::DbError;

/// A failure of the rules, whichever module it comes from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DomainError {
    /// The app, user or key is missing, not the caller's, or busy.
    #[error(transparent)]
    Access(#[from] access::AccessError),
    /// A config change is not valid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A build is not valid.
    #[error(transparent)]
    Build(#[from] build::BuildError),
    /// The image of a `deis pull` could not be brought onto the platform.
    #[error(transparent)]
    Pull(#[from] pull::PullError),
    /// A release could not be made or run.
    #[error(transparent)]
    Release(#[from] release::ReleaseError),
    /// A name, domain, key or certificate is not valid.
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl DomainError {
    /// How the failure is reported.
    pub(crate) fn code(&self) -> Code {
        match self {
            DomainError::Access(e) => e.code(),
            DomainError::Config(_) | DomainError::Invalid(_) => Code::InvalidArgument,
            DomainError::Build(e) => e.code(),
            DomainError::Pull(e) => e.code(),
            DomainError::Release(e) => e.code(),
            DomainError::Db(e) => e.code(),
        }
    }

    /// The request field a validation failure is about, if it is one.
    pub(crate) fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::Config(e) => Some(e.field()),
            DomainError::Invalid(e) => Some(e.field()),
            DomainError::Build(e) => e.field(),
            DomainError::Access(_)
            | DomainError::Pull(_)
            | DomainError::Release(_)
            | DomainError::Db(_) => None,
        }
    }
}
