//! The web dashboard over real HTTP, as a browser without JavaScript meets it. The browser's own
//! run is in the end-to-end suite.

mod addresses;
mod browser;
mod flows;
mod headers;
mod names;
mod sessions;
mod streams;
