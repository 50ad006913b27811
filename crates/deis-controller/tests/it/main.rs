//! The controller over real HTTP, on SQLite and on PostgreSQL: every endpoint group, with the
//! status lines, headers and bodies the Deis v1.13 client depends on.

#[macro_use]
mod support;

mod apps;
mod auth;
mod binary;
mod builds;
mod client_flows;
mod concurrency;
mod config;
mod dashboard;
mod docker;
mod etcd_tls;
mod fuzz;
mod grpc;
mod hooks;
mod host_agent;
mod keys;
mod leader;
mod operator_log;
mod perms;
mod pull;
mod wire;
