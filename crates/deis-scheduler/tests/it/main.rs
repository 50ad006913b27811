mod docker;
mod registry;
mod supervise;
mod swarm;
