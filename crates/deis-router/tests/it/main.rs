mod binary;
mod failover;
mod fixture;
mod routing;
mod rules;
mod tls;
mod upgrade;
