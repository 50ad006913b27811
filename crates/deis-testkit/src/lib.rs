//! Fixtures for tests that need real services: etcd (one member or a three-member cluster whose
//! members can be killed and restarted), PostgreSQL, Redis and the Docker registry, each started
//! from the Debian binaries in a temporary directory on free loopback ports and stopped when
//! dropped; Docker objects labelled per test and removed afterwards, with a small base image made
//! locally; a network namespace standing for a host outside this one; a simulated cluster of
//! Docker hosts (a network namespace and a `dockerd` each) joined into a Swarm; helpers to run a
//! service binary and wait for a condition with a deadline.
//!
//! A missing binary fails the test with the `apt-get install` command that provides it. This
//! crate is for tests only: it panics with a message instead of returning errors.

mod binaries;
mod cluster;
mod docker;
mod etcd;
mod images;
mod net;
mod outside;
mod postgres;
mod process;
mod redis;
mod registry;
mod service;
mod sshd;
mod wait;
pub mod wrk;

pub use binaries::require;
pub use cluster::{Cluster, ClusterHost};
pub use docker::{TEST_LABEL, TestDocker};
pub use etcd::{CertFiles, Etcd, EtcdCluster, TestCa};
pub use images::skopeo;
pub use net::{free_addr, free_port, http_get, http_request};
pub use outside::Outside;
pub use postgres::Postgres;
pub use process::{ServiceProcess, unique_id};
pub use redis::Redis;
pub use registry::Registry;
pub use service::{STOP_GRACE, assert_stops_cleanly, start_service};
pub use sshd::{SshKeyPair, Sshd};
pub use wait::{eventually, within};
