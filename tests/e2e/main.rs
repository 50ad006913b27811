mod deploy;
mod platform;
mod units;
