mod deploy;
mod platform;
mod push;
mod support;
mod units;
