//! The registry proxy's integration tests: one binary, one module per area, against a real
//! `docker-registry`, skopeo and the local Docker engine.

mod api;
mod binary;
mod cache;
mod images;
mod relay;
mod support;
