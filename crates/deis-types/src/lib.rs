//! Shared vocabulary of the platform: validated names (apps, process types, container names,
//! release versions), the one table of error codes that every API maps to HTTP and gRPC, and the
//! rules the controller and the builder share about what a tenant may use: images (`image`)
//! and `BUILDPACK_URL`s.
//!
//! This crate holds plain data and parsing only. It does no I/O and knows nothing about the
//! config store, the database or Docker.

mod buildpack;
mod code;
pub mod image;
mod names;

pub use buildpack::{BuildpackSource, BuildpackUrlError, buildpack_source};
pub use code::Code;
pub use names::{AppName, ContainerName, InvalidName, ProcessType, ReleaseVersion};
