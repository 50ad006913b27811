//! The dashboard's pages, one module per area; `actions` holds the app page's forms, `form`
//! what every form does.

pub(crate) mod actions;
pub(crate) mod admin;
pub(crate) mod app;
pub(crate) mod apps;
pub(crate) mod auth;
pub(crate) mod form;
pub(crate) mod keys;
