//! The config store's contract, run against both backends, and the etcd cluster behaviour.

#[macro_use]
mod contract;
mod cluster;
mod etcd;
mod follow;
mod memory;
mod schema;
mod tls;
