mod binary;
mod config;
