//! The generated tonic/prost code for the platform's internal gRPC APIs, whose only source is
//! the `proto/` folder at the workspace root. Nothing here is written by hand but this file.
//!
//! This crate is not where conversions to domain types or typed clients live: those belong to
//! the crate that owns each API.

#![allow(unreachable_pub, missing_docs, clippy::all)]

/// The controller's APIs.
pub mod controller {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("deis.controller.v1");
    }
}

/// The logger's APIs.
pub mod logger {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("deis.logger.v1");
    }
}
