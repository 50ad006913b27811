mod docker;
mod supervise;
