//! The fixtures start the real services, and what they start works.

mod docker;
mod services;
