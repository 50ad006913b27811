mod docker;
mod supervise;
mod swarm;
