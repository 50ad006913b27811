//! The dashboard's pages, one module per area; `actions` holds the app page's forms.

pub(crate) mod actions;
pub(crate) mod admin;
pub(crate) mod app;
pub(crate) mod apps;
pub(crate) mod auth;
pub(crate) mod keys;
