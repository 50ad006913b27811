mod docker;
mod isolation;
mod registry;
mod supervise;
mod swarm;
