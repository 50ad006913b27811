//! The web dashboard over real HTTP, as a browser without JavaScript meets it. The browser's own
//! run is in the end-to-end suite.

mod browser;
mod flows;
mod names;
mod sessions;
