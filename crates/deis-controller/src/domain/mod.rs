//! The controller's rules, independent of HTTP: config validation and merging, release
//! creation and summaries, deploys and scaling, and the validation of names, domains, keys and
//! certificates. The REST handlers and the builder's gRPC API both call these.

pub(crate) mod config;
pub(crate) use deis_types::image;
pub(crate) mod names;
pub(crate) mod release;
pub(crate) mod validate;
