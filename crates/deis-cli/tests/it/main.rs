mod commands;
mod support;
