mod cloud_init;
mod config;
mod tunnel;
