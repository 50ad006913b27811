//! Builds (§4.7): what a build may name, and the release that runs it. The REST API (a
//! user's `deis pull`, the builder's hook) and the builder's gRPC API both create them here;
//! the image of a `deis pull` (a build without a `sha`) is brought onto the platform first
//! (`pull`), before anything is recorded.

use deis_types::Code;
use serde_json::{Map, Value};

use super::DomainError;
use super::image::{self, Refused};
use super::pull;
use super::release::{self, Change};
use crate::db::{App, Build, Release, User};
use crate::state::AppState;
use crate::time;

/// A build as requested.
pub(crate) struct NewBuild {
    /// The image to run.
    pub(crate) image: String,
    /// The git commit it was built from (empty for `deis pull`).
    pub(crate) sha: String,
    /// Process types and their commands.
    pub(crate) procfile: Map<String, Value>,
    /// `"true"` when built from a Dockerfile.
    pub(crate) dockerfile: String,
}

/// Why a build is refused; the text is the Deis API's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("This field may not be blank.")]
    NoImage,
    #[error("Ensure this field has no more than 256 characters.")]
    ImageTooLong { length: usize },
    /// Not an image reference, or an image the app may not run (someone else's, the platform's).
    #[error(transparent)]
    Image(#[from] Refused),
    #[error("Ensure this field has no more than 40 characters.")]
    ShaTooLong { sha: String },
    #[error("build of {app}: encoding its procfile failed")]
    Procfile {
        app: String,
        #[source]
        source: serde_json::Error,
    },
}

impl BuildError {
    pub(crate) fn code(&self) -> Code {
        match self {
            BuildError::Image(Refused::NotYours(_)) => Code::PermissionDenied,
            BuildError::Procfile { .. } => Code::Internal,
            _ => Code::InvalidArgument,
        }
    }

    /// The request field the refusal is about, if it is a field's.
    pub(crate) fn field(&self) -> Option<&'static str> {
        match self {
            BuildError::NoImage
            | BuildError::ImageTooLong { .. }
            | BuildError::Image(Refused::Invalid(_)) => Some("image"),
            BuildError::ShaTooLong { .. } => Some("sha"),
            BuildError::Image(Refused::NotYours(_)) | BuildError::Procfile { .. } => None,
        }
    }
}

/// The builder calls again with the same commit and image when the controller it called went
/// away before answering (the leading controller lost mid-deploy): if that build is the
/// latest release's already, the release is deployed (a no-op once it runs) and answered,
/// not made a second time.
async fn made_before(
    state: &AppState,
    app: &App,
    build: &Build,
) -> Result<Option<(Build, Release)>, DomainError> {
    if build.sha.is_empty() {
        return Ok(None);
    }
    let Some(latest) = state.db.latest_release(&app.id).await? else {
        return Ok(None);
    };
    let Some(uuid) = &latest.build else {
        return Ok(None);
    };
    match state.db.build(uuid).await? {
        Some(made) if made.image == build.image && made.sha == build.sha => {
            release::deploy(state, app, &latest, None).await?;
            Ok(Some((made, latest)))
        }
        _ => Ok(None),
    }
}

/// Checks `build` for `app`, brings a pulled image onto the platform, stores the build as
/// `actor`'s and releases it (under the app's lock).
pub(crate) async fn create(
    state: &AppState,
    app: &App,
    actor: &User,
    build: NewBuild,
) -> Result<(Build, Release), DomainError> {
    if build.image.is_empty() {
        return Err(BuildError::NoImage.into());
    }
    if build.image.len() > 256 {
        return Err(BuildError::ImageTooLong {
            length: build.image.len(),
        }
        .into());
    }
    image::check(&build.image, &app.id).map_err(BuildError::from)?;
    if build.sha.len() > 40 {
        return Err(BuildError::ShaTooLong { sha: build.sha }.into());
    }
    let procfile =
        serde_json::to_string(&build.procfile).map_err(|source| BuildError::Procfile {
            app: app.id.clone(),
            source,
        })?;
    // Outside the app's lock: a copy may take minutes, and is the same whoever makes it.
    let image = if build.sha.is_empty() {
        pull::resolve(state, &app.id, &build.image).await?
    } else {
        build.image.clone()
    };
    // The summary names the image as the user did, not the platform's copy of it.
    let summary =
        (image != build.image).then(|| format!("{} deployed {}", actor.username, build.image));
    let now = time::now();
    let build = Build {
        uuid: time::new_uuid(),
        owner: actor.username.clone(),
        app: app.id.clone(),
        image,
        sha: build.sha,
        procfile,
        dockerfile: build.dockerfile,
        created: now,
        updated: now,
    };
    let (_guard, app) = state.lock_app(app).await?;
    if let Some(made) = made_before(state, &app, &build).await? {
        return Ok(made);
    }
    let release = release::create(
        state,
        &app,
        &actor.username,
        Change {
            build: Some(build.clone()),
            summary,
            ..Change::default()
        },
    )
    .await?;
    Ok((build, release))
}
