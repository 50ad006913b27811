mod cloud_init;
mod config;
