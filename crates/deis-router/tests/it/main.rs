//! The router's integration tests, one module per area, on a router fed by an in-memory store.

mod binary;
mod connect;
mod failover;
mod fast;
mod fixture;
mod idle;
mod passthrough;
mod routing;
mod rules;
mod spans;
mod tls;
mod upgrade;
mod wire;
