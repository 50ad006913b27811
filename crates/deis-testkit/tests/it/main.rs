//! The fixtures start the real services, and what they start works.

mod cluster;
mod docker;
mod services;
