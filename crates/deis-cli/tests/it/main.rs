mod commands;
mod requests;
mod support;
