//! The Docker backend against the real engine, with images built locally.

mod docker;
